-- asset: core.work_items
-- severity: warning
-- description: every value the models branch on is one they know, and no landed row is left out
-- Offending rows: (what, value, rows): unknown values, and landed rows the models skip.
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
