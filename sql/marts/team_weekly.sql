-- depends_on: marts.decisions, marts.item_flow, marts.approval_waits, marts.decision_waits, core.teams
-- key: team, week_start
create or replace table marts.team_weekly as
with as_of as (
    select as_of from config.run
),

min_size as (
    select coalesce((select value::integer from config.settings where key = 'min_group_size'), 3) as n
),

public_teams as (
    -- a configured team smaller than the minimum group size is reported as `other`, never by name
    select team, case when team in (select team from config.teams) and members < (select n from min_size)
        then 'other' else team end as public_team
    from core.teams
),

items as (
    select f.*, coalesce(p.public_team, f.team) as public_team
    from marts.item_flow as f
    left join public_teams as p using (team)
),

finished as (
    select
        public_team as team, date_trunc('week', finished_at)::date as week_start,
        count(*) as throughput,
        quantile_cont(cycle_s, 0.5) as cycle_p50_s,
        quantile_cont(cycle_s, 0.85) as cycle_p85_s,
        quantile_cont(cycle_s, 0.95) as cycle_p95_s,
        avg(handoffs) as handoffs_per_item_mean,
        quantile_cont(handoffs, 0.85) as handoffs_per_item_p85,
        sum(team_handoffs) / nullif(sum(handoffs), 0) as team_handoff_share,
        sum(bounces) / nullif(sum(handoffs), 0) as bounce_rate,
        sum(blocked_s) / nullif(sum(cycle_s), 0) as blocked_share,
        sum(active_s) / nullif(sum(active_s) + sum(waiting_s), 0) as flow_efficiency,
        sum(reversals) / count(*) as reversal_rate,
        quantile_cont(approval_chain_length, 0.85) as approval_chain_p85,
        avg((approval_chain_length >= 2)::int) as stacked_approval_share
    from items
    where finished_at is not null
    group by all
),

approvals as (
    select
        items.public_team as team, date_trunc('week', w.decided_at)::date as week_start,
        count(*) as approvals_decided,
        quantile_cont(w.calendar_s, 0.5) as approval_wait_p50_s,
        quantile_cont(w.calendar_s, 0.85) as approval_wait_p85_s,
        quantile_cont(w.calendar_s, 0.95) as approval_wait_p95_s
    from marts.approval_waits as w
    join items using (item_id)
    where w.decided_at is not null
    group by all
),

decisions as (
    select
        items.public_team as team, date_trunc('week', d.decided_at)::date as week_start,
        count(*) as decisions_made,
        quantile_cont(d.calendar_s, 0.5) as decision_latency_p50_s,
        quantile_cont(d.calendar_s, 0.85) as decision_latency_p85_s,
        avg(d.is_remote_decision::int) as remote_decision_share
    from marts.decision_waits as d
    join items using (item_id)
    where d.decided_at is not null
    group by all
),

escalations as (
    -- decisions and approvals made outside both the owning team and the requester's team, by week of the decision
    select coalesce(p.public_team, d.owner_team) as team, date_trunc('week', d.decided_at)::date as week_start,
        count(*) as escalations
    from marts.decisions as d
    left join public_teams as p on p.team = d.owner_team
    where d.is_escalation
    group by all
),

cycles as (
    select
        public_team as team, started_at, coalesce(finished_at, (select as_of from as_of)) as ended_at,
        date_trunc('week', started_at) as first_week,
        date_trunc('week', coalesce(finished_at, (select as_of from as_of))) as last_week
    from items
    where started_at is not null
),

wip_pieces as (
    -- an item's work in progress per week without a row per item and week: its first and last week in
    -- part, the weeks between in full (counted by a running sum of +1 / -1 below)
    select team, first_week as week, epoch(least(ended_at, first_week + interval 7 day)) - epoch(started_at)
        as part_s, 0 as delta
    from cycles
    where last_week >= first_week
    union all
    select team, last_week, epoch(ended_at) - epoch(last_week), 0 from cycles where last_week > first_week
    union all
    select team, first_week + interval 7 day, 0, 1 from cycles where last_week > first_week + interval 7 day
    union all
    select team, last_week, 0, -1 from cycles where last_week > first_week + interval 7 day
),

wip_weeks as (
    select team, week, sum(part_s) as part_s, sum(delta) as delta
    from wip_pieces
    group by team, week
),

all_weeks as (
    -- every week from a team's first to its last, so that weeks only spanned in full appear
    select team, unnest(generate_series(min(week), max(week), interval 7 day)) as week
    from wip_weeks
    group by team
),

in_progress as (
    select team, week_start, (full_items * 7 * 86400 + coalesce(part_s, 0)) / (7 * 86400) as mean_wip
    from (
        select
            all_weeks.team, all_weeks.week::date as week_start, wip_weeks.part_s,
            sum(coalesce(wip_weeks.delta, 0)) over (partition by all_weeks.team order by all_weeks.week)
                as full_items
        from all_weeks
        left join wip_weeks using (team, week)
    )
    where part_s is not null or full_items > 0
),

weeks as (
    select team, week_start from finished
    union select team, week_start from approvals
    union select team, week_start from decisions
    union select team, week_start from in_progress
    union select team, week_start from escalations
)

select
    weeks.team,
    weeks.week_start,
    strftime(weeks.week_start, '%G-W%V') as iso_week,
    coalesce(finished.throughput, 0) as throughput,
    finished.cycle_p50_s, finished.cycle_p85_s, finished.cycle_p95_s,
    finished.handoffs_per_item_mean, finished.handoffs_per_item_p85,
    finished.team_handoff_share, finished.bounce_rate,
    approvals.approval_wait_p50_s, approvals.approval_wait_p85_s, approvals.approval_wait_p95_s,
    decisions.decision_latency_p50_s, decisions.decision_latency_p85_s, decisions.remote_decision_share,
    finished.blocked_share, finished.flow_efficiency,
    coalesce(in_progress.mean_wip, 0) as mean_wip,
    finished.reversal_rate,
    coalesce(approvals.approvals_decided, 0) as approvals_decided,
    coalesce(decisions.decisions_made, 0) as decisions_made,
    finished.approval_chain_p85, finished.stacked_approval_share,
    coalesce(escalations.escalations, 0) as escalations
from weeks
left join finished using (team, week_start)
left join approvals using (team, week_start)
left join decisions using (team, week_start)
left join in_progress using (team, week_start)
left join escalations using (team, week_start)
order by weeks.team, weeks.week_start
;

comment on table marts.team_weekly is 'Per team and ISO week: item metrics by week of finishing, wait metrics by week of the decision. Teams under the minimum group size are reported as other.';
comment on column marts.team_weekly.team is 'Owning team of the items (other: teams under the minimum group size).';
comment on column marts.team_weekly.week_start is 'Monday of the ISO week.';
comment on column marts.team_weekly.iso_week is 'ISO week, YYYY-Www.';
comment on column marts.team_weekly.throughput is 'Items finished in the week.';
comment on column marts.team_weekly.cycle_p50_s is 'Cycle time of finished items, 50th percentile (continuous), seconds.';
comment on column marts.team_weekly.cycle_p85_s is 'Cycle time, 85th percentile, seconds.';
comment on column marts.team_weekly.cycle_p95_s is 'Cycle time, 95th percentile, seconds.';
comment on column marts.team_weekly.handoffs_per_item_mean is 'Mean handoffs per finished item.';
comment on column marts.team_weekly.handoffs_per_item_p85 is 'Handoffs per finished item, 85th percentile.';
comment on column marts.team_weekly.team_handoff_share is 'Team handoffs / handoffs of the finished items.';
comment on column marts.team_weekly.bounce_rate is 'Bounces / handoffs of the finished items.';
comment on column marts.team_weekly.approval_wait_p50_s is 'Approval waits decided in the week, 50th percentile, seconds.';
comment on column marts.team_weekly.approval_wait_p85_s is 'Approval waits, 85th percentile, seconds.';
comment on column marts.team_weekly.approval_wait_p95_s is 'Approval waits, 95th percentile, seconds.';
comment on column marts.team_weekly.decision_latency_p50_s is 'Decision waits decided in the week, 50th percentile, seconds.';
comment on column marts.team_weekly.decision_latency_p85_s is 'Decision waits, 85th percentile, seconds.';
comment on column marts.team_weekly.remote_decision_share is 'Share of decisions made outside the owning team.';
comment on column marts.team_weekly.blocked_share is 'Blocked seconds / cycle seconds of the finished items.';
comment on column marts.team_weekly.flow_efficiency is 'Sum active / sum (active + waiting) of the finished items.';
comment on column marts.team_weekly.mean_wip is 'Mean number of items in progress (started, not finished) over the week.';
comment on column marts.team_weekly.reversal_rate is 'Reversals per finished item.';
comment on column marts.team_weekly.approvals_decided is 'Approval waits decided in the week.';
comment on column marts.team_weekly.decisions_made is 'Decision waits decided in the week.';
comment on column marts.team_weekly.approval_chain_p85 is '85th percentile (continuous) of approval_chain_length over the items finished in the week.';
comment on column marts.team_weekly.stacked_approval_share is 'Share of the items finished in the week with two or more approval steps (approvals stacked for safety).';
comment on column marts.team_weekly.escalations is 'Decisions and approvals made in the week by someone outside both the owning team and the requester''s team (marts.decisions.is_escalation).';
