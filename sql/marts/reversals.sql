-- depends_on: core.status_intervals, core.jira_changes, core.github_events, marts.approval_waits
-- key: item_id, kind, event_ord
create or replace table marts.reversals as
with started as (
    select item_id, min(entered_at) as started_at
    from core.status_intervals
    where state <> 'backlog'
    group by item_id
),

transitions as (
    -- a workflow migration's status change is administrative: never a reversal
    select item_id, entered_at, entered_by, entered_ord, prev_state, state
    from core.status_intervals
    where visit_no > 1 and not is_migration
),

reopened as (
    select item_id, 'reopened' as kind, entered_at as reversed_at, entered_by as actor_id, entered_ord as event_ord
    from transitions
    where prev_state = 'done' and state <> 'done'
),

regressions as (
    select item_id, 'status_regression', entered_at, entered_by, entered_ord
    from transitions
    where prev_state in ('approval', 'queue') and state = 'backlog'
),

first_approvals as (
    select item_id, min(decided_at) as approved_at
    from marts.approval_waits
    where outcome = 'approved'
    group by item_id
),

reapprovals as (
    -- an approval requested again after one was given
    select w.item_id, 'reapproval', w.requested_at, null, w.event_ord
    from marts.approval_waits as w
    join first_approvals as a on a.item_id = w.item_id and a.approved_at < w.requested_at
),

dismissals as (
    select item_id, 'approval_dismissed', event_at, actor_id, ord
    from core.github_events
    where event = 'review_dismissed'
),

field_changes as (
    select
        c.item_id,
        case when c.field_lower = 'priority' then 'priority_changed_after_start'
            else 'scope_changed_after_start' end,
        c.created_at, c.author_id, c.ord
    from core.jira_changes as c
    join started using (item_id)
    where c.created_at > started.started_at
        and c.field_lower in ('priority', 'fix version', 'fix versions', 'fixversions', 'sprint', 'parent', 'epic link',
            'parent link')
)

select item_id, kind, reversed_at, actor_id, event_ord
from (
    select * from reopened
    union all select * from regressions
    union all select * from reapprovals
    union all select * from dismissals
    union all select * from field_changes
)
;

comment on table marts.reversals is 'One row per decision revisited: reopened, reapproval, approval_dismissed, priority_changed_after_start, scope_changed_after_start, status_regression.';
comment on column marts.reversals.item_id is 'jira:<issue key> or github:<owner>/<repo>#<number>.';
comment on column marts.reversals.kind is 'reopened, reapproval, approval_dismissed, priority_changed_after_start, scope_changed_after_start or status_regression.';
comment on column marts.reversals.reversed_at is 'When the reversal happened (UTC).';
comment on column marts.reversals.actor_id is 'Who made the change, where known.';
comment on column marts.reversals.event_ord is 'Order of the causing event within the item''s event log.';
