-- Working intervals of every calendar in UTC, one per working local day (local hours converted with the
-- calendar's time zone, so daylight-saving changes and holidays fall where they should), with the working
-- seconds before each; core.calendar_hours indexes them by hour for core.worked.
-- depends_on: core.work_items
-- key: calendar, start_utc
create or replace table core.calendar_intervals as
with bounds as (
    select
        (coalesce((select min(created_at) from core.work_items), (select as_of from config.run))
            - interval 2 day)::date as first_day,
        ((select as_of from config.run) + interval 2 day)::date as last_day
),

days as (
    select cal.calendar, cal.timezone, cal.workdays, cal.day_start, cal.day_end, d::date as local_day
    from config.calendars as cal
    cross join bounds
    cross join generate_series(bounds.first_day, bounds.last_day, interval 1 day) as g(d)
),

working as (
    select days.*
    from days
    where list_contains(days.workdays, isodow(days.local_day))
        and not exists (
            select 1 from config.holidays as h where h.calendar = days.calendar and h.holiday = days.local_day
        )
),

intervals as (
    select
        calendar,
        timezone(timezone, local_day + day_start) as start_utc,
        timezone(timezone, local_day + day_end) as end_utc
    from working
)

select
    calendar,
    start_utc,
    end_utc,
    epoch(end_utc) - epoch(start_utc) as len_s,
    coalesce(sum(epoch(end_utc) - epoch(start_utc)) over (
        partition by calendar order by start_utc rows between unbounded preceding and 1 preceding
    ), 0) as cum_before_s
from intervals
;

-- The UTC hour an instant falls in: the key of core.calendar_hours.
create or replace macro core.hour_no(t) as floor(epoch(t) / 3600)::bigint;

-- Working seconds of a calendar from its first interval up to t, given h, the core.calendar_hours row of
-- t's hour: those before the interval in effect, its worked part, and that of an interval starting later
-- in the hour. Business seconds between a and b = worked(hour of b, b) - worked(hour of a, a).
create or replace macro core.worked(h, t) as
    coalesce(h.cum_before_s + greatest(least(epoch(t) - h.start_s, h.len_s), 0)
        + greatest(least(epoch(t) - h.next_start_s, h.next_len_s), 0), 0)
