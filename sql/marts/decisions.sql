-- Every decision made, one row each: the decision waits that were decided, and the approval requests answered
-- by a decision (approved, rejected, declined, changes requested; not a comment, a withdrawal, or a merge or
-- close without review). Who asked (the actor of the requesting status change, label or review request), who
-- decided, their teams, and whether it was escalated: decided by someone of a known team other than both the
-- owning team and the requester's team.
-- depends_on: marts.decision_waits, marts.approval_waits, core.work_items, core.status_intervals, core.github_events, core.teams, core.memberships
-- key: item_id, kind, source_kind, event_ord, requested_of
create or replace table marts.decisions as
with items as (
    select item_id, team from core.work_items
),

waits as (
    select item_id, 'decision' as kind, source_kind, event_ord, waited_on as requested_of, requested_at,
        decided_at, decided_by, decided_by_team, calendar_s, business_s
    from marts.decision_waits
    where decided_at is not null and decided_by is not null
    union all
    select item_id, 'approval', source_kind, event_ord, requested_of, requested_at, decided_at, decided_by,
        null, calendar_s, business_s
    from marts.approval_waits
    where decided_at is not null and decided_by is not null
        and outcome in ('approved', 'rejected', 'declined', 'changes_requested')
),

requesters as (
    -- the person who asked: the actor of the status change into the state (Jira), of the label or review
    -- request (GitHub); JSM approvals have none
    select w.*, coalesce(si.entered_by, ge.actor_id) as requested_by
    from waits as w
    left join core.status_intervals as si
        on w.source_kind = 'jira_status' and si.item_id = w.item_id and si.entered_ord = w.event_ord
    left join core.github_events as ge
        on w.source_kind in ('github_review', 'github_label') and ge.item_id = w.item_id and ge.ord = w.event_ord
),

deciders as (
    -- JSM approvals name every approver who decided: their team if they share one, else unknown
    select item_id, kind, source_kind, event_ord, requested_of,
        case when count(distinct team) = 1 then min(team) else 'unknown' end as deciding_team
    from (
        select r.item_id, r.kind, r.source_kind, r.event_ord, r.requested_of,
            coalesce(r.decided_by_team, core.team_of(trim(d.person), r.decided_at, null)) as team
        from requesters as r, unnest(string_split(r.decided_by, ',')) as d(person)
    )
    group by all
)

select
    r.item_id, r.kind, r.source_kind, r.event_ord, r.requested_of, r.requested_at, r.decided_at,
    r.requested_by,
    case when r.requested_by is not null then core.team_of(r.requested_by, r.requested_at, null) else 'unknown' end
        as requester_team,
    r.decided_by, d.deciding_team, items.team as owner_team,
    d.deciding_team <> 'unknown' and items.team <> 'unknown' and d.deciding_team <> items.team
        as is_outside_owner_team,
    d.deciding_team <> 'unknown' and items.team <> 'unknown' and d.deciding_team <> items.team
        and d.deciding_team is distinct from (case when r.requested_by is not null
            then nullif(core.team_of(r.requested_by, r.requested_at, null), 'unknown') end)
        as is_escalation,
    r.calendar_s, r.business_s
from requesters as r
join deciders as d
    on d.item_id = r.item_id and d.kind = r.kind and d.source_kind = r.source_kind
    and d.event_ord is not distinct from r.event_ord and d.requested_of is not distinct from r.requested_of
join items on items.item_id = r.item_id
;

comment on table marts.decisions is 'Every decision made (decided decision waits, approval requests answered by a decision), with who asked, who decided and their teams.';
comment on column marts.decisions.item_id is 'jira:<issue key> or github:<owner>/<repo>#<number>.';
comment on column marts.decisions.kind is 'decision (marts.decision_waits) or approval (marts.approval_waits).';
comment on column marts.decisions.source_kind is 'jira_status, jsm, github_review or github_label.';
comment on column marts.decisions.event_ord is 'Order of the requesting event within the item''s event log (the source row''s event_ord).';
comment on column marts.decisions.requested_of is 'Who was asked (approval_waits.requested_of; decision_waits.waited_on).';
comment on column marts.decisions.requested_at is 'When the decision was asked for (UTC).';
comment on column marts.decisions.decided_at is 'When it was made (UTC).';
comment on column marts.decisions.requested_by is 'Who asked: actor of the status change, label or review request; null for JSM.';
comment on column marts.decisions.requester_team is 'Team of requested_by at requested_at.';
comment on column marts.decisions.decided_by is 'Who decided (JSM: the approvers who decided, comma-separated).';
comment on column marts.decisions.deciding_team is 'Team of decided_by at decided_at (JSM approvers of several teams: unknown).';
comment on column marts.decisions.owner_team is 'Team owning the item.';
comment on column marts.decisions.is_outside_owner_team is 'Decided by a known team other than the (known) owning team.';
comment on column marts.decisions.is_escalation is 'Decided by a known team other than the (known) owning team and the requester''s team (when known).';
comment on column marts.decisions.calendar_s is 'Latency: wall-clock seconds from requested_at to decided_at.';
comment on column marts.decisions.business_s is 'Latency in working seconds of the item team''s calendar.';
