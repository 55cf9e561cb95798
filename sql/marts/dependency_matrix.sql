-- Who blocks whom per ISO week: marts.dependency_waits cut at week boundaries (Monday 00:00 UTC), summed per
-- blocking team -> blocked team, declared and undeclared apart. Teams under the minimum group size are `other`.
-- depends_on: marts.dependency_waits, core.work_items, core.teams, core.calendar_intervals, core.calendar_hours
-- key: week_start, blocking_team, blocked_team, declared
create or replace table marts.dependency_matrix as
with min_size as (
    select coalesce((select value::integer from config.settings where key = 'min_group_size'), 3) as n
),

public_teams as (
    select team, case when team in (select team from config.teams) and members < (select n from min_size)
        then 'other' else team end as public_team
    from core.teams
),

weeks as (
    -- one row per wait and ISO week it touches
    select w.*, unnest(generate_series(
        date_trunc('week', w.started_at), date_trunc('week', w.ended_at - interval 1 microsecond), interval 7 day
    )) as week
    from marts.dependency_waits as w
),

cut as (
    select weeks.item_id, weeks.blocked_team, weeks.blocking_team, weeks.declared, weeks.week,
        greatest(weeks.started_at, weeks.week) as started_at,
        least(weeks.ended_at, weeks.week + interval 7 day) as ended_at,
        items.calendar
    from weeks
    join core.work_items as items using (item_id)
)

select
    cut.week::date as week_start,
    strftime(cut.week, '%G-W%V') as iso_week,
    coalesce(bt.public_team, cut.blocking_team) as blocking_team,
    coalesce(dt.public_team, cut.blocked_team) as blocked_team,
    cut.declared,
    count(distinct cut.item_id) as items_blocked,
    sum(epoch(cut.ended_at) - epoch(cut.started_at)) as blocked_s,
    sum(core.worked(e, cut.ended_at) - core.worked(s, cut.started_at)) as blocked_business_s
from cut
left join public_teams as bt on bt.team = cut.blocking_team
left join public_teams as dt on dt.team = cut.blocked_team
left join core.calendar_hours as s on s.calendar = cut.calendar and s.hour_no = core.hour_no(cut.started_at)
left join core.calendar_hours as e on e.calendar = cut.calendar and e.hour_no = core.hour_no(cut.ended_at)
group by all
order by week_start, blocking_team, blocked_team, declared
;

comment on table marts.dependency_matrix is 'Who blocks whom: per ISO week, blocking team -> blocked team, items blocked and blocked time, declared links and undeclared cross-team waits apart (from marts.dependency_waits).';
comment on column marts.dependency_matrix.week_start is 'Monday of the ISO week (UTC).';
comment on column marts.dependency_matrix.iso_week is 'ISO week, YYYY-Www.';
comment on column marts.dependency_matrix.blocking_team is 'Team waited on (teams under the minimum group size as other).';
comment on column marts.dependency_matrix.blocked_team is 'Team of the waiting items.';
comment on column marts.dependency_matrix.declared is 'true: "is blocked by" links; false: undeclared (handed to another team''s member and waiting).';
comment on column marts.dependency_matrix.items_blocked is 'Distinct items waiting in the week.';
comment on column marts.dependency_matrix.blocked_s is 'Wall-clock seconds waited within the week.';
comment on column marts.dependency_matrix.blocked_business_s is 'Working seconds waited within the week, in each blocked item team''s calendar.';
