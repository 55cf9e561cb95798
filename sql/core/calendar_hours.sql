-- One row per calendar per UTC hour, holding what core.worked needs for any instant in that hour: the
-- working seconds before the interval in effect at the hour's start (or 0 before the first), and the next
-- interval if one starts within the hour. Marts join it by (calendar, core.hour_no(t)) with an equality,
-- which is far cheaper than an ASOF join that sorts millions of instants.
-- depends_on: core.calendar_intervals
-- key: calendar, hour_no
create or replace table core.calendar_hours as
with intervals as (
    select calendar, start_utc, end_utc, len_s, cum_before_s from core.calendar_intervals
),

bounds as (
    -- up to as_of at least: after a calendar's last working day (a weekly one ends days before as_of) an
    -- instant's hour must still find the whole calendar's worked seconds, not no row (which reads as 0)
    select
        calendar,
        min(start_utc) - interval 1 day as first_at,
        greatest(max(end_utc), (select as_of from config.run)) + interval 1 day as last_at
    from intervals
    group by calendar
),

hours as (
    select calendar, unnest(generate_series(
        date_trunc('hour', first_at), date_trunc('hour', last_at), interval 1 hour
    )) as hour_start
    from bounds
),

in_effect as (
    -- the last interval starting at or before the hour's start
    select hours.calendar, hours.hour_start, cur.start_utc, cur.len_s, cur.cum_before_s
    from hours
    asof left join intervals as cur on cur.calendar = hours.calendar and hours.hour_start >= cur.start_utc
),

with_next as (
    -- the first interval starting after the hour's start, if it starts within the hour
    select
        in_effect.*,
        case when nxt.start_utc < in_effect.hour_start + interval 1 hour then nxt.start_utc end as next_start_utc,
        case when nxt.start_utc < in_effect.hour_start + interval 1 hour then nxt.len_s end as next_len_s
    from in_effect
    asof left join intervals as nxt on nxt.calendar = in_effect.calendar and in_effect.hour_start < nxt.start_utc
)

select
    calendar,
    core.hour_no(hour_start) as hour_no,
    coalesce(cum_before_s, 0) as cum_before_s,
    epoch(coalesce(start_utc, hour_start)) as start_s,
    coalesce(len_s, 0) as len_s,
    coalesce(epoch(next_start_utc), epoch(hour_start) + 3600) as next_start_s,
    coalesce(next_len_s, 0) as next_len_s
from with_next
