-- depends_on: marts.handoffs, core.teams
-- key: week_start, from_team, to_team
create or replace table marts.handoff_matrix as
with min_size as (
    select coalesce((select value::integer from config.settings where key = 'min_group_size'), 3) as n
),

public_teams as (
    -- a configured team smaller than the minimum group size is reported as `other`
    select team, case when team in (select team from config.teams) and members < (select n from min_size)
        then 'other' else team end as public_team
    from core.teams
)

select
    date_trunc('week', h.handed_off_at)::date as week_start,
    strftime(h.handed_off_at, '%G-W%V') as iso_week,
    coalesce(f.public_team, h.from_team) as from_team,
    coalesce(t.public_team, h.to_team) as to_team,
    count(*) as handoffs,
    count(*) as "count",
    count(*) filter (where h.is_bounce) as bounces
from marts.handoffs as h
left join public_teams as f on f.team = h.from_team
left join public_teams as t on t.team = h.to_team
group by all
order by week_start, from_team, to_team
;

comment on table marts.handoff_matrix is 'Handoffs per ISO week from team to team (teams under the minimum group size as other).';
comment on column marts.handoff_matrix.week_start is 'Monday of the ISO week of the handoffs.';
comment on column marts.handoff_matrix.iso_week is 'ISO week, YYYY-Www.';
comment on column marts.handoff_matrix.from_team is 'Team handing off.';
comment on column marts.handoff_matrix.to_team is 'Team receiving.';
comment on column marts.handoff_matrix.handoffs is 'Number of handoffs.';
comment on column marts.handoff_matrix."count" is 'Number of handoffs (same as handoffs; the name METRICS.md uses).';
comment on column marts.handoff_matrix.bounces is 'Of which bounces (the receiver held the item before).';
