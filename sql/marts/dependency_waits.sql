-- Who blocks whom, piece by piece: the time an item waits on another team, declared or not. Declared: an open
-- "is blocked by" link (core.blocked_pieces, cause dependency), the blocking team being the blocking item's;
-- overlapping links to items of the same team count once. Undeclared: a Jira issue handed off (marts.handoffs)
-- to a member of another team than its own (both known), while it sits in a queue, approval, decision or
-- blocked state, until the next handoff; the blocking team being the holder's at the handoff.
-- depends_on: core.work_items, core.blocked_pieces, core.ownership_intervals, core.status_intervals, marts.handoffs, core.calendar_intervals, core.calendar_hours
-- key: item_id, declared, blocking_team, started_at
create or replace table marts.dependency_waits as
with items as (
    select item_id, source, team, calendar from core.work_items
),

declared_pieces as (
    select item_id, blocking_team, started_at, ended_at, is_open, blocking_item_id as waited_on
    from core.blocked_pieces
    where cause = 'dependency'
),

declared_islands as (
    -- two blockers of one team at once: one wait on that team (islands per item and blocking team)
    select *, sum(is_new) over (partition by item_id, blocking_team order by started_at, ended_at) as island
    from (
        select *, case when started_at <= max(ended_at) over (
            partition by item_id, blocking_team order by started_at, ended_at
            rows between unbounded preceding and 1 preceding
        ) then 0 else 1 end as is_new
        from declared_pieces
    )
),

declared as (
    select item_id, true as declared, blocking_team, min(started_at) as started_at, max(ended_at) as ended_at,
        bool_or(is_open) as is_open,
        string_agg(distinct waited_on, ',' order by waited_on) as waited_on
    from declared_islands
    group by item_id, blocking_team, island
),

handed_away as (
    -- a Jira issue held by someone of another team, from the handoff that gave it to them
    select o.item_id, o.started_at, o.ended_at, o.is_open, h.to_owner, h.to_team
    from core.ownership_intervals as o
    join items on items.item_id = o.item_id and items.source = 'jira'
    join marts.handoffs as h
        on h.item_id = o.item_id and h.handed_off_at = o.started_at and h.to_owner = o.owner_id
    where h.to_team <> items.team and h.to_team <> 'unknown' and items.team <> 'unknown'
),

undeclared_pieces as (
    select
        a.item_id, a.started_at as held_since, a.to_team as blocking_team,
        greatest(a.started_at, si.entered_at) as started_at, least(a.ended_at, si.exited_at) as ended_at,
        a.is_open and si.is_open as is_open, a.to_owner as waited_on
    from handed_away as a
    join core.status_intervals as si
        on si.item_id = a.item_id and si.state in ('queue', 'approval', 'decision', 'blocked')
        and si.entered_at < a.ended_at and si.exited_at > a.started_at
),

undeclared as (
    -- consecutive waiting statuses during one hold are one wait
    select item_id, false as declared, blocking_team, min(started_at) as started_at, max(ended_at) as ended_at,
        bool_or(is_open) as is_open, any_value(waited_on) as waited_on
    from (
        select *, sum(is_new) over (partition by item_id, held_since order by started_at) as island
        from (
            select *, case when started_at <= max(ended_at) over (
                partition by item_id, held_since order by started_at
                rows between unbounded preceding and 1 preceding
            ) then 0 else 1 end as is_new
            from undeclared_pieces
        )
    )
    group by item_id, held_since, blocking_team, island
),

pieces as (
    select * from declared
    union all by name
    select * from undeclared
)

select
    p.item_id, items.team as blocked_team, p.blocking_team, p.declared, p.waited_on, p.started_at, p.ended_at,
    p.is_open,
    epoch(p.ended_at) - epoch(p.started_at) as calendar_s,
    core.worked(e, p.ended_at) - core.worked(s, p.started_at) as business_s
from pieces as p
join items using (item_id)
left join core.calendar_hours as s on s.calendar = items.calendar and s.hour_no = core.hour_no(p.started_at)
left join core.calendar_hours as e on e.calendar = items.calendar and e.hour_no = core.hour_no(p.ended_at)
where p.ended_at > p.started_at
;

comment on table marts.dependency_waits is 'Time an item waits on another team (or its own, for a declared link): declared "is blocked by" links, and undeclared waits while handed to another team''s member.';
comment on column marts.dependency_waits.item_id is 'The blocked item.';
comment on column marts.dependency_waits.blocked_team is 'The blocked item''s team.';
comment on column marts.dependency_waits.blocking_team is 'Declared: the blocking item''s team; undeclared: the holder''s team at the handoff.';
comment on column marts.dependency_waits.declared is 'true: an "is blocked by" link; false: handed to another team''s member, waiting in a queue, approval, decision or blocked state.';
comment on column marts.dependency_waits.waited_on is 'Declared: the blocking item ids (comma-separated); undeclared: the holder.';
comment on column marts.dependency_waits.started_at is 'Start of the wait (UTC).';
comment on column marts.dependency_waits.ended_at is 'End of the wait, or as_of while open.';
comment on column marts.dependency_waits.is_open is 'Still open at as_of.';
comment on column marts.dependency_waits.calendar_s is 'Wall-clock seconds.';
comment on column marts.dependency_waits.business_s is 'Working seconds in the blocked item team''s calendar.';
