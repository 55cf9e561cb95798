-- asset: core.work_items
-- severity: warning
-- description: every value the models branch on is one they know, and no landed row is left out
-- Offending rows: (what, value, rows): unknown values (a new review state, a new timeline event type: named),
-- and landed rows the models skip.
select 'jira status category' as what, status_category as value, count(*) as "rows"
from staging.stg_jira__statuses
where status_category is null or status_category not in ('new', 'indeterminate', 'done')
group by all
union all
select 'JSM finalDecision', final_decision, count(*)
from staging.stg_jira__approvals
where final_decision is null or final_decision not in ('approved', 'declined', 'pending')
group by all
union all
select 'JSM approverDecision', ap.decision, count(*)
from staging.stg_jira__approvals, unnest(approvers) as t(ap)
where ap.decision is null or ap.decision not in ('approved', 'declined', 'pending')
group by all
union all
select 'GitHub review state', review_state, count(*)
from staging.stg_github__timeline_events
where event = 'reviewed'
    and (review_state is null or review_state not in ('approved', 'changes_requested', 'commented', 'dismissed',
        'pending'))
group by all
union all
select 'GitHub timeline event type', event, count(*)
from staging.stg_github__timeline_events
where event is null or event not in (
        -- read by the models (landing_format.TIMELINE_EVENTS)
        'assigned', 'closed', 'convert_to_draft', 'labeled', 'merged', 'ready_for_review', 'reopened',
        'review_dismissed', 'review_request_removed', 'review_requested', 'reviewed', 'unassigned',
        'unlabeled',
        -- known to GitHub, not read (connectors/github_graphql.UNUSED_EVENTS: the connectors drop them, so a
        -- landed kind outside both lists is one GitHub added since)
        'added_to_merge_queue', 'added_to_project', 'added_to_project_v2', 'auto_merge_disabled',
        'auto_merge_enabled', 'auto_rebase_enabled', 'auto_squash_enabled', 'automatic_base_change_failed',
        'automatic_base_change_succeeded', 'base_ref_changed', 'base_ref_deleted', 'base_ref_force_pushed',
        'comment_deleted', 'commented', 'commit-commented', 'committed', 'connected',
        'converted_note_to_issue', 'converted_to_discussion', 'cross-referenced', 'demilestoned',
        'deployed', 'deployment_environment_changed', 'disconnected', 'head_ref_deleted',
        'head_ref_force_pushed', 'head_ref_restored', 'issue_type_added', 'issue_type_changed',
        'issue_type_removed', 'line-commented', 'locked', 'marked_as_duplicate', 'mentioned', 'milestoned',
        'moved_columns_in_project', 'parent_issue_added', 'parent_issue_removed', 'pinned',
        'project_v2_item_status_changed', 'referenced', 'removed_from_merge_queue', 'removed_from_project',
        'removed_from_project_v2', 'renamed', 'sub_issue_added', 'sub_issue_removed', 'subscribed',
        'transferred', 'unlocked', 'unmarked_as_duplicate', 'unpinned', 'unsubscribed', 'user_blocked'
    )
group by all
union all
select 'JSM approval of an issue not landed', null, count(distinct payload->'approval'->>'id')
from raw.jira__approvals
where (payload->>'issueId') not in (select issue_id from staging.stg_jira__issues)
having count(*) > 0
union all
select 'GitHub timeline event of an item not landed', null, count(*)
from staging.stg_github__timeline_events
where item_id not in (select item_id from core.work_items)
having count(*) > 0
order by all
