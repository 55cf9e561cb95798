-- depends_on: marts.item_links, core.work_items, core.status_intervals, core.ownership_intervals, core.blocked_pieces, marts.approval_waits, marts.decision_waits, core.calendar_intervals, core.calendar_hours, core.teams, core.memberships
-- key: item_id, cause, started_at, waited_on
create or replace table marts.wait_intervals as
with as_of as (
    select as_of from config.run
),

items as (
    select item_id, source, team, team_field, calendar from core.work_items
),

queue as (
    select si.item_id, 'queue' as cause, si.entered_at as started_at, si.exited_at as ended_at,
        si.owner_id as waited_on, core.team_of(si.owner_id, si.entered_at, items.team_field) as waited_on_team,
        si.is_open
    from core.status_intervals as si
    join items using (item_id)
    where si.state = 'queue'
),

approvals as (
    select item_id, case when source_kind = 'github_review' then 'review' else 'approval' end, requested_at,
        coalesce(decided_at, (select as_of from as_of)), requested_of, requested_of_team, is_open
    from marts.approval_waits
),

decisions as (
    select item_id, 'decision', requested_at, coalesce(decided_at, (select as_of from as_of)),
        coalesce(decided_by, waited_on),
        coalesce(decided_by_team, case when waited_on is not null then core.team_of(waited_on, requested_at, null) end),
        is_open
    from marts.decision_waits
),

owners as (
    -- who held each item from when (several changes at one instant: the last)
    select item_id, started_at, arg_max_null(owner_id, ord) as owner_id
    from core.ownership_intervals
    group by all
),

blocked_named as (
    -- waited on: the blocking item (dependency; a blocked status or flag with an "is blocked by" link open
    -- during it), its team = the team of its owner when the wait starts, else the blocking item's team;
    -- null when nothing says what the item waits on
    select b.item_id, case when b.cause = 'dependency' then 'dependency' else 'blocked' end as cause, b.started_at,
        b.ended_at, b.waited_on_item as waited_on,
        case when b.waited_on_item is not null then
            case when o.owner_id is not null then core.team_of(o.owner_id, b.started_at, blocker.team_field)
                else coalesce(blocker.team, 'unknown') end
        end as waited_on_team,
        b.is_open
    from core.blocked_pieces as b
    left join items as blocker on blocker.item_id = b.waited_on_item
    asof left join owners as o on o.item_id = b.waited_on_item and o.started_at <= b.started_at
),

blocked_islands as (
    -- a blocked status and a flag (or two pieces on one blocker) that overlap or touch are one wait on the same
    -- thing: islands per item, cause and waited_on, so the ledger's key holds and its rows never double-count
    select *, sum(is_new) over (partition by item_id, cause, waited_on order by started_at, ended_at) as island
    from (
        select *, case when started_at <= max(ended_at) over (
            partition by item_id, cause, waited_on order by started_at, ended_at
            rows between unbounded preceding and 1 preceding
        ) then 0 else 1 end as is_new
        from blocked_named
    )
),

blocked as (
    select item_id, cause, min(started_at), max(ended_at), waited_on, arg_min(waited_on_team, started_at),
        bool_or(is_open)
    from blocked_islands
    group by item_id, cause, waited_on, island
),

linked_review_pieces as (
    -- a Jira issue in an approval or queue state while a pull request implementing it has an open review
    -- request: the issue waits on that reviewer (issue 16)
    select
        l.item_id, aw.requested_of as waited_on, aw.requested_of_team as waited_on_team,
        greatest(si.entered_at, aw.requested_at) as started_at,
        least(si.exited_at, coalesce(aw.decided_at, (select as_of from as_of))) as ended_at,
        si.is_open and aw.is_open as is_open
    from marts.item_links as l
    join core.status_intervals as si on si.item_id = l.item_id and si.state in ('approval', 'queue')
    join marts.approval_waits as aw
        on aw.item_id = l.linked_item_id and aw.source_kind = 'github_review'
        and aw.requested_at < si.exited_at and coalesce(aw.decided_at, (select as_of from as_of)) > si.entered_at
    where l.link_kind = 'implemented_by'
),

linked_review_islands as (
    -- two pull requests asking the same reviewer at once are one wait on them (islands per issue and reviewer)
    select *, sum(is_new) over (partition by item_id, waited_on order by started_at, ended_at) as island
    from (
        select *, case when started_at <= max(ended_at) over (
            partition by item_id, waited_on order by started_at, ended_at
            rows between unbounded preceding and 1 preceding
        ) then 0 else 1 end as is_new
        from linked_review_pieces
        where ended_at > started_at
    )
),

linked_reviews as (
    select item_id, 'review', min(started_at), max(ended_at), waited_on, arg_min(waited_on_team, started_at),
        bool_or(is_open)
    from linked_review_islands
    group by item_id, waited_on, island
),

unowned as (
    select o.item_id, 'unowned', greatest(o.started_at, si.entered_at), least(o.ended_at, si.exited_at),
        null, null, o.is_open and si.is_open
    from core.ownership_intervals as o
    join items on items.item_id = o.item_id and items.source = 'jira'
    join core.status_intervals as si
        on si.item_id = o.item_id and si.state not in ('backlog', 'done')
        and si.entered_at < o.ended_at and si.exited_at > o.started_at
    where o.owner_id is null
),

unioned as (
    select * from queue
    union all select * from approvals
    union all select * from linked_reviews
    union all select * from decisions
    union all select * from blocked
    union all select * from unowned
),

timed as (
    select unioned.*, items.calendar
    from unioned
    join items using (item_id)
)

select
    timed.item_id, timed.cause, timed.started_at, timed.ended_at, timed.waited_on, timed.waited_on_team,
    timed.is_open,
    epoch(timed.ended_at) - epoch(timed.started_at) as calendar_s,
    core.worked(e, timed.ended_at)
        - core.worked(s, timed.started_at) as business_s
from timed
left join core.calendar_hours as s
    on s.calendar = timed.calendar and s.hour_no = core.hour_no(timed.started_at)
left join core.calendar_hours as e
    on e.calendar = timed.calendar and e.hour_no = core.hour_no(timed.ended_at)
;

comment on table marts.wait_intervals is 'The wait ledger: every interval an item waits on someone or something. Start here: what do we wait for, and on whom?';
comment on column marts.wait_intervals.item_id is 'jira:<issue key> or github:<owner>/<repo>#<number>.';
comment on column marts.wait_intervals.cause is 'queue, approval, review, decision, blocked, dependency or unowned. review on a Jira issue: a linked pull request waits on a reviewer while the issue is in an approval or queue state.';
comment on column marts.wait_intervals.started_at is 'Start of the wait (UTC).';
comment on column marts.wait_intervals.ended_at is 'End of the wait, or as_of while open.';
comment on column marts.wait_intervals.waited_on is 'Whom or what was waited on: a person or GitHub team id, the blocking item (dependency, or a blocked status or flag with an open "is blocked by" link); null when unknown (docs/metrics-rulings.md).';
comment on column marts.wait_intervals.waited_on_team is 'Team of waited_on at the start (for a blocking item: its owner''s team then, else the item''s team).';
comment on column marts.wait_intervals.is_open is 'Still open at as_of.';
comment on column marts.wait_intervals.calendar_s is 'Wall-clock seconds of the wait.';
comment on column marts.wait_intervals.business_s is 'Working seconds of the wait in the item team''s calendar.';
