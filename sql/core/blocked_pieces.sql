-- Pieces of time an unfinished item cannot proceed, each with its cause: `blocked_status` (a visit to a
-- blocked state), `flag` (Jira Flagged set until cleared), `dependency` (an open "is blocked by X" link
-- while X is not done; X unknown counts as not done). Every piece is cut to the item's not-done time.
-- `waited_on_item`: the blocking item (dependency), or for a blocked status or flag the item of the first
-- created "is blocked by" link open during the piece; null when no such link.
-- depends_on: core.work_items, core.jira_changes, core.jira_changes_all, core.status_intervals, staging.stg_jira__links
-- key: item_id, cause, started_at, blocking_item_id
create or replace table core.blocked_pieces as
with as_of as (
    select as_of from config.run
),

items as (
    select item_id, source, created_at, team, is_flagged from core.work_items
),

run_starts as (
    -- a not-done visit after a done one (or the first visit) starts a run; prev_state / next_state are the
    -- lag / lead status_intervals computed already
    select item_id, visit_no, entered_at
    from core.status_intervals
    where state <> 'done' and coalesce(prev_state, 'done') = 'done'
),

run_ends as (
    select item_id, visit_no, exited_at, is_open
    from core.status_intervals
    where state <> 'done' and coalesce(next_state, 'done') = 'done'
),

not_done as (
    -- maximal runs of not-done visits per item: each start with the first end at or after it
    select s.item_id, s.entered_at as started_at, e.exited_at as ended_at, e.is_open
    from run_starts as s
    asof join run_ends as e on e.item_id = s.item_id and e.visit_no >= s.visit_no
),

blocked_status as (
    select item_id, 'blocked_status' as cause, entered_at as started_at, exited_at as ended_at,
        null::varchar as blocking_item_id
    from core.status_intervals
    where state = 'blocked'
),

flag_changes as (
    select item_id, ord, created_at, coalesce(to_string, '') <> '' as is_set, coalesce(from_string, '') <> '' as was_set
    from core.jira_changes
    where field_lower = 'flagged'
),

flag_points as (
    select items.item_id, 0 as ord, items.created_at as point_at,
        -- flagged at creation when the first Flagged change clears it
        coalesce((select arg_min_null(coalesce(f.from_string, '') <> '' or coalesce(f.to_string, '') = '', f.ord)
                  from core.jira_changes_all as f
                  where f.item_id = items.item_id and f.field_lower = 'flagged'), items.is_flagged) as is_set
    from items
    where items.source = 'jira'
    union all
    select item_id, ord, created_at, is_set from flag_changes
),

flag_runs as (
    select *, sum(is_new::int) over (partition by item_id order by ord) as run_no
    from (select *, is_set is distinct from lag(is_set) over (partition by item_id order by ord) as is_new
          from flag_points)
),

flag_spans as (
    select r.item_id, 'flag' as cause, min(r.point_at) as started_at,
        coalesce((select min(c.point_at) from flag_points as c where c.item_id = r.item_id
            and c.ord > max(r.ord) and not c.is_set), (select as_of from as_of)) as ended_at,
        null::varchar as blocking_item_id
    from flag_runs as r
    where r.is_set
    group by r.item_id, r.run_no
),

link_items as (
    select
        item_id, ord, created_at,
        regexp_extract(to_string, 'is blocked by\s+(\S+)\s*$', 1) as added_key,
        regexp_extract(from_string, 'is blocked by\s+(\S+)\s*$', 1) as removed_key
    from core.jira_changes
    where field_lower = 'link'
),

link_spans as (
    select
        a.item_id, a.created_at as started_at,
        coalesce((select min(r.created_at) from link_items as r where r.item_id = a.item_id
            and r.removed_key = a.added_key and r.ord > a.ord), (select as_of from as_of)) as ended_at,
        'jira:' || a.added_key as blocking_item_id
    from link_items as a
    where a.added_key <> ''
    union all
    -- a current link that no changelog mentions: blocked since the item's creation
    select items.item_id, items.created_at, (select as_of from as_of), 'jira:' || l.other_issue_key
    from staging.stg_jira__links as l
    join items on items.item_id = l.item_id
    where lower(l.description) = 'is blocked by'
        and not exists (select 1 from link_items as li where li.item_id = l.item_id
            and l.other_issue_key in (li.added_key, li.removed_key))
),

blocker_not_done as (
    -- when each blocker was not done; a blocker unknown to the warehouse is never done
    select nd.item_id as blocking_item_id, nd.started_at, nd.ended_at
    from not_done as nd
    union all
    select distinct ls.blocking_item_id, '-infinity'::timestamptz, 'infinity'::timestamptz
    from link_spans as ls
    where ls.blocking_item_id not in (select item_id from items)
),

dependency_spans as (
    select ls.item_id, 'dependency' as cause, greatest(ls.started_at, b.started_at) as started_at,
        least(ls.ended_at, b.ended_at) as ended_at, ls.blocking_item_id
    from link_spans as ls
    join blocker_not_done as b
        on b.blocking_item_id = ls.blocking_item_id and b.started_at < ls.ended_at and b.ended_at > ls.started_at
),

pieces as (
    select * from blocked_status
    union all select * from flag_spans
    union all select * from dependency_spans
),

cut as (
    select p.item_id, p.cause, greatest(p.started_at, nd.started_at) as started_at,
        least(p.ended_at, nd.ended_at) as ended_at, p.blocking_item_id,
        nd.is_open and least(p.ended_at, nd.ended_at) = (select as_of from as_of) as is_open
    from pieces as p
    join not_done as nd
        on nd.item_id = p.item_id and nd.started_at < p.ended_at and nd.ended_at > p.started_at
),

linked as (
    -- a blocked status or flag piece waits on the item of the first "is blocked by" link open during it
    select c.item_id, c.cause, c.started_at,
        arg_min(ls.blocking_item_id, (ls.started_at, ls.blocking_item_id)) as linked_item_id
    from cut as c
    join link_spans as ls on ls.item_id = c.item_id and ls.started_at < c.ended_at and ls.ended_at > c.started_at
    where c.cause <> 'dependency'
    group by all
)

select
    cut.*,
    coalesce(cut.blocking_item_id, linked.linked_item_id) as waited_on_item,
    items.team,
    case when cut.blocking_item_id is not null then coalesce(blocker.team, 'unknown') end as blocking_team,
    case when cut.blocking_item_id is not null then coalesce(blocker.team, 'unknown') <> items.team end
        as is_cross_team
from cut
join items using (item_id)
left join items as blocker on blocker.item_id = cut.blocking_item_id
left join linked
    on linked.item_id = cut.item_id and linked.cause = cut.cause and linked.started_at = cut.started_at
    and cut.blocking_item_id is null
where cut.ended_at > cut.started_at
