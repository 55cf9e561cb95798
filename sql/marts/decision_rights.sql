-- Who decides for whom per ISO week (of the decision): owning team -> deciding team over marts.decisions:
-- decisions made, latency p50 / p85 (continuous), and the share of the owning team's decisions that week made
-- by another known team. The diagonal is work where decisions are made. Teams under the minimum group size
-- are `other`.
-- depends_on: marts.decisions, core.teams
-- key: week_start, owner_team, deciding_team
create or replace table marts.decision_rights as
with min_size as (
    select coalesce((select value::integer from config.settings where key = 'min_group_size'), 3) as n
),

public_teams as (
    select team, case when team in (select team from config.teams) and members < (select n from min_size)
        then 'other' else team end as public_team
    from core.teams
),

decided as (
    select
        date_trunc('week', d.decided_at)::date as week_start,
        coalesce(o.public_team, d.owner_team) as owner_team,
        coalesce(t.public_team, d.deciding_team) as deciding_team,
        d.is_outside_owner_team, d.calendar_s, d.business_s
    from marts.decisions as d
    left join public_teams as o on o.team = d.owner_team
    left join public_teams as t on t.team = d.deciding_team
),

cells as (
    select
        week_start, owner_team, deciding_team,
        count(*) as decisions,
        quantile_cont(calendar_s, 0.5) as latency_p50_s,
        quantile_cont(calendar_s, 0.85) as latency_p85_s,
        quantile_cont(business_s, 0.5) as latency_business_p50_s,
        quantile_cont(business_s, 0.85) as latency_business_p85_s,
        count(*) filter (where is_outside_owner_team) as decided_outside
    from decided
    group by all
)

select
    week_start, strftime(week_start, '%G-W%V') as iso_week, owner_team, deciding_team, decisions,
    latency_p50_s, latency_p85_s, latency_business_p50_s, latency_business_p85_s,
    sum(decided_outside) over (partition by week_start, owner_team)
        / sum(decisions) over (partition by week_start, owner_team) as outside_share
from cells
order by week_start, owner_team, deciding_team
;

comment on table marts.decision_rights is 'Who decides for whom: per ISO week of the decision, owning team -> deciding team, decisions and latency (from marts.decisions).';
comment on column marts.decision_rights.week_start is 'Monday of the ISO week of the decisions (UTC).';
comment on column marts.decision_rights.iso_week is 'ISO week, YYYY-Www.';
comment on column marts.decision_rights.owner_team is 'Team owning the items (teams under the minimum group size as other).';
comment on column marts.decision_rights.deciding_team is 'Team of whoever decided.';
comment on column marts.decision_rights.decisions is 'Decisions made in the week.';
comment on column marts.decision_rights.latency_p50_s is 'Median wall-clock seconds from request to decision.';
comment on column marts.decision_rights.latency_p85_s is '85th percentile (continuous) of the same.';
comment on column marts.decision_rights.latency_business_p50_s is 'Median latency in working seconds.';
comment on column marts.decision_rights.latency_business_p85_s is '85th percentile latency in working seconds.';
comment on column marts.decision_rights.outside_share is 'Of all the owning team''s decisions that week, the share made by another known team (same value on each of its rows).';
