-- depends_on: core.work_items, core.review_requests, core.status_intervals, core.person_aliases, staging.stg_jira__approvals, core.calendar_intervals, core.calendar_hours, core.teams, core.memberships
-- key: item_id, source_kind, event_ord, requested_of
create or replace table marts.approval_waits as
with as_of as (
    select as_of from config.run
),

items as (
    select item_id, team, team_field, calendar from core.work_items
),

github_reviews as (
    select
        r.item_id, 'github_review' as source_kind, r.requested_at, r.decided_at, r.requested_of,
        core.team_of(r.requested_of, r.requested_at, null) as requested_of_team, r.decided_by,
        r.outcome, r.review_body, r.request_ord as event_ord
    from core.review_requests as r
),

jira_states as (
    select
        si.item_id, 'jira_status' as source_kind, si.entered_at as requested_at,
        case when not si.is_open then si.exited_at end as decided_at, si.owner_id as requested_of,
        core.team_of(si.owner_id, si.entered_at, items.team_field) as requested_of_team,
        case when not si.is_open then si.exited_by end as decided_by,  -- none when a migration moved it
        case
            when si.is_open then null
            when si.next_state in ('backlog', 'active')
                or regexp_matches(coalesce(si.next_status, ''), 'reject|declin|deny|denied|won''?t', 'i')
                then 'rejected'
            else 'approved'
        end as outcome,
        null as review_body, si.entered_ord as event_ord
    from core.status_intervals as si
    join items using (item_id)
    where si.state = 'approval' and si.item_id like 'jira:%'
),

jira_states_deduped as (
    -- a visit to an approval state that a JSM approval of the same item overlaps is that approval, not a
    -- second request: the JSM row (it knows the approvers and the decision) counts
    select js.*
    from jira_states as js
    join core.status_intervals as si on si.item_id = js.item_id and si.entered_ord = js.event_ord
    where not exists (
        select 1
        from staging.stg_jira__approvals as a
        where 'jira:' || a.issue_key = js.item_id
            and a.created_at <= (select as_of from as_of)
            and a.created_at < si.exited_at
            and coalesce(a.completed_at, 'infinity') > si.entered_at
    )
),

jsm_approvers as (
    -- an approver object naming no account (no accountId, key or name) is a deleted account: deleted:user
    select a.issue_id, a.approval_id,
        coalesce(p.person_id, case when ap.approver_user is null then 'deleted:user' end) as person_id, ap.decision
    from staging.stg_jira__approvals as a,
        unnest(a.approvers) as t(ap)
    left join core.person_aliases as p on p.raw_id = 'jira:' || ap.approver_user
),

jsm as (
    select
        'jira:' || a.issue_key as item_id, 'jsm' as source_kind, a.created_at as requested_at,
        a.completed_at as decided_at,
        (select string_agg(x.person_id, ',' order by x.person_id) from jsm_approvers as x
         where x.issue_id = a.issue_id and x.approval_id = a.approval_id) as requested_of,
        -- one approver: their team; several: unknown
        case when len(a.approvers) = 1 then core.team_of((select min(x.person_id) from jsm_approvers as x
                      where x.issue_id = a.issue_id and x.approval_id = a.approval_id),
                     a.created_at, items.team_field) else 'unknown' end as requested_of_team,
        (select string_agg(x.person_id, ',' order by x.person_id) from jsm_approvers as x
         where x.issue_id = a.issue_id and x.approval_id = a.approval_id and x.decision <> 'pending') as decided_by,
        case when a.completed_at is not null then a.final_decision end as outcome,
        null as review_body, try_cast(a.approval_id as bigint) as event_ord
    from staging.stg_jira__approvals as a
    join items on items.item_id = 'jira:' || a.issue_key
    where a.created_at <= (select as_of from as_of)
),

unioned as (
    select * from github_reviews
    union all select * from jira_states_deduped
    union all select * from jsm
),

timed as (
    select
        unioned.* exclude (decided_at, decided_by, outcome),
        case when unioned.decided_at <= (select as_of from as_of) then unioned.decided_at end as decided_at,
        case when unioned.decided_at <= (select as_of from as_of) then unioned.decided_by end as decided_by,
        case when unioned.decided_at <= (select as_of from as_of) then unioned.outcome end as outcome,
        coalesce(unioned.decided_at, 'infinity') > (select as_of from as_of) as is_open,
        least(coalesce(unioned.decided_at, 'infinity'), (select as_of from as_of)) as ended_at,
        items.calendar
    from unioned
    join items using (item_id)
)

select
    timed.item_id, timed.source_kind, timed.requested_at, timed.decided_at, timed.requested_of,
    timed.requested_of_team, timed.decided_by, timed.outcome, timed.is_open,
    epoch(timed.ended_at) - epoch(timed.requested_at) as calendar_s,
    core.worked(e, timed.ended_at)
        - core.worked(s, timed.requested_at) as business_s,
    timed.review_body, timed.event_ord
from timed
left join core.calendar_hours as s
    on s.calendar = timed.calendar and s.hour_no = core.hour_no(timed.requested_at)
left join core.calendar_hours as e
    on e.calendar = timed.calendar and e.hour_no = core.hour_no(timed.ended_at)
;

comment on table marts.approval_waits is 'One row per approval request: GitHub review requests (per requested user or team), visits to Jira approval states, Jira Service Management approvals.';
comment on column marts.approval_waits.item_id is 'jira:<issue key> or github:<owner>/<repo>#<number>.';
comment on column marts.approval_waits.source_kind is 'github_review, jira_status or jsm.';
comment on column marts.approval_waits.requested_at is 'When the approval was requested (UTC).';
comment on column marts.approval_waits.decided_at is 'When the request ended (review, withdrawal, merge, close, status exit, JSM completion); null while open.';
comment on column marts.approval_waits.requested_of is 'Who was asked: person id, github-team:<org>/<slug>, or JSM approvers (comma-separated, sorted).';
comment on column marts.approval_waits.requested_of_team is 'Team of requested_of at the request.';
comment on column marts.approval_waits.decided_by is 'Who ended the request (reviewer, remover, merger, closer, transition actor, JSM approvers who decided).';
comment on column marts.approval_waits.outcome is 'approved, changes_requested, commented, withdrawn, merged_without_review, closed_without_review, rejected (Jira), approved/declined (JSM); null while open.';
comment on column marts.approval_waits.is_open is 'Still open at as_of (then the duration is cut at as_of).';
comment on column marts.approval_waits.calendar_s is 'Wall-clock seconds from requested_at to decided_at (or as_of).';
comment on column marts.approval_waits.business_s is 'Working seconds in the item team''s calendar over the same span.';
comment on column marts.approval_waits.review_body is 'Body of the deciding review (GitHub), for rubber-stamp detection.';
comment on column marts.approval_waits.event_ord is 'Order of the requesting event within the item''s event log.';
