-- depends_on: core.work_items, core.ownership_intervals, core.status_intervals, core.review_requests, core.teams, core.memberships
-- key: item_id, event_ord, kind, to_owner
create or replace table marts.handoffs as
with items as (
    select item_id, source, kind, team, team_field, author_id from core.work_items
),

-- Jira: the assignee; A -> unassigned -> B is one handoff A -> B at B's assignment; not while done.
jira_spans as (
    select o.item_id, o.ord, o.owner_id, o.started_at, o.is_migration,
        last_value(o.owner_id ignore nulls) over (
            partition by o.item_id order by o.ord rows between unbounded preceding and 1 preceding
        ) as previous_owner,
        -- the owner held the item in an earlier span
        o.owner_id is not null and rank() over (partition by o.item_id, o.owner_id order by o.ord) > 1 as is_bounce
    from core.ownership_intervals as o
    join items using (item_id)
    where items.source = 'jira'
),

jira_handoffs as (
    select
        s.item_id, s.started_at as handed_off_at, s.ord, s.previous_owner as from_owner, s.owner_id as to_owner,
        'reassignment' as kind, s.is_bounce
    from jira_spans as s
    asof join core.status_intervals as si on si.item_id = s.item_id and s.ord > si.entered_ord
    where s.ord > 0 and s.owner_id is not null and s.previous_owner is not null
        and s.owner_id <> s.previous_owner and si.state <> 'done'
        and not s.is_migration  -- a workflow migration's reassignment is administrative
),

-- Pull requests: author -> requested user/team per request; reviewer -> author per review closing a request.
review_handoffs as (
    select
        r.item_id, r.requested_at as handed_off_at, r.request_ord as ord, r.author_id as from_owner,
        r.requested_of as to_owner, 'review_request' as kind,
        -- requested of the same owner before (an earlier event, not another request of the same one)
        r.requested_of is not null
            and rank() over (partition by r.item_id, r.requested_of order by r.request_ord) > 1 as is_bounce
    from core.review_requests as r
),

return_handoffs as (
    select distinct
        r.item_id, r.decided_at as handed_off_at, r.end_ord as ord, r.decided_by as from_owner,
        r.author_id as to_owner, 'review_return' as kind, true as is_bounce
    from core.review_requests as r
    where r.outcome in ('approved', 'changes_requested', 'commented')
),

unioned as (
    select * from jira_handoffs
    union all select * from review_handoffs
    union all select * from return_handoffs
),

teamed as (
    select
        unioned.*,
        items.source,
        core.team_of(unioned.from_owner, unioned.handed_off_at, items.team_field) as from_team,
        core.team_of(unioned.to_owner, unioned.handed_off_at, items.team_field) as to_team
    from unioned
    join items using (item_id)
)

select
    item_id, handed_off_at, from_owner, to_owner, from_team, to_team, from_team <> to_team as is_team_handoff,
    is_bounce, kind, source, ord as event_ord
from teamed
;

comment on table marts.handoffs is 'One row per transfer of an unfinished item from one owner to a different owner (Jira assignee changes; pull request review requests and hand-backs).';
comment on column marts.handoffs.item_id is 'jira:<issue key> or github:<owner>/<repo>#<number>.';
comment on column marts.handoffs.handed_off_at is 'When the receiving owner got the item (UTC).';
comment on column marts.handoffs.from_owner is 'Canonical person id (or github-team:<org>/<slug>) handing the item off.';
comment on column marts.handoffs.to_owner is 'Canonical person id (or github-team:<org>/<slug>) receiving the item.';
comment on column marts.handoffs.from_team is 'Team of from_owner at the handoff instant (unknown if none).';
comment on column marts.handoffs.to_team is 'Team of to_owner at the handoff instant (unknown if none).';
comment on column marts.handoffs.is_team_handoff is 'from_team differs from to_team.';
comment on column marts.handoffs.is_bounce is 'The receiving owner held the item at an earlier moment (ping-pong).';
comment on column marts.handoffs.kind is 'reassignment (Jira), review_request or review_return (pull requests).';
comment on column marts.handoffs.source is 'jira or github.';
comment on column marts.handoffs.event_ord is 'Order of the causing event within the item''s event log (core.item_events.ord).';
