-- The headline figures per team, as the report and the demo show them.
-- depends_on: marts.item_flow, marts.approval_waits, marts.decision_waits, marts.team_weekly
-- key: team
create or replace view marts.team_headlines as
with named_teams as (
    -- team_weekly names only teams at or above the minimum group size; the rest are `other`
    select distinct team from marts.team_weekly
),

items as (
    select
        item_flow.*,
        case when item_flow.team in (select team from named_teams) then item_flow.team else 'other' end
            as public_team
    from marts.item_flow
),

finished as (
    select
        public_team as team,
        count(*) as items_finished,
        avg(handoffs) as handoffs_per_item,
        sum(active_s) / nullif(sum(active_s) + sum(waiting_s), 0) as flow_efficiency,
        quantile_cont(cycle_s, 0.85) / 86400 as cycle_time_p85_d
    from items
    where finished_at is not null
    group by all
),

approval as (
    select items.public_team as team, quantile_cont(waits.calendar_s, 0.85) / 3600 as approval_wait_p85_h
    from marts.approval_waits as waits
    join items using (item_id)
    where not waits.is_open
    group by all
),

decision as (
    select items.public_team as team, quantile_cont(waits.calendar_s, 0.85) / 3600 as decision_latency_p85_h
    from marts.decision_waits as waits
    join items using (item_id)
    where not waits.is_open
    group by all
),

teams as (select distinct public_team as team from items)

select
    teams.team,
    coalesce(finished.items_finished, 0) as items_finished,
    finished.handoffs_per_item,
    approval.approval_wait_p85_h,
    decision.decision_latency_p85_h,
    finished.flow_efficiency,
    finished.cycle_time_p85_d
from teams
left join finished using (team)
left join approval using (team)
left join decision using (team)
order by items_finished desc, team
;

comment on view marts.team_headlines is 'Headline flow figures per team over all time (teams under the minimum group size as other).';
comment on column marts.team_headlines.team is 'The item''s team.';
comment on column marts.team_headlines.items_finished is 'Items done now.';
comment on column marts.team_headlines.handoffs_per_item is 'Mean handoffs of the finished items.';
comment on column marts.team_headlines.approval_wait_p85_h is '85th percentile of closed approval waits, calendar hours.';
comment on column marts.team_headlines.decision_latency_p85_h is '85th percentile of closed decision waits, calendar hours.';
comment on column marts.team_headlines.flow_efficiency is 'Sum of active time over sum of active and waiting time, finished items.';
comment on column marts.team_headlines.cycle_time_p85_d is '85th percentile of cycle time of finished items, days.';
