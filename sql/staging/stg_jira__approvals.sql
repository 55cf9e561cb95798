-- Jira Service Management approvals, one row per approval (approvers as a list).
-- depends_on: raw.jira__approvals, staging.stg_jira__issues
-- key: issue_id, approval_id
create or replace table staging.stg_jira__approvals as
with latest as (
    select * from raw.jira__approvals
    qualify row_number() over (partition by id order by loaded_at desc, extract_id desc) = 1
)

select
    latest.payload->>'issueId' as issue_id,
    latest.payload->>'issueKey' as issue_key,
    latest.payload->'approval'->>'id' as approval_id,
    latest.payload->'approval'->>'name' as approval_name,
    latest.payload->'approval'->>'finalDecision' as final_decision,
    coalesce(try_cast(latest.payload->'approval'->'createdDate'->>'iso8601' as timestamptz),
             to_timestamp((latest.payload->'approval'->'createdDate'->>'epochMillis')::bigint / 1000)) as created_at,
    coalesce(try_cast(latest.payload->'approval'->'completedDate'->>'iso8601' as timestamptz),
             to_timestamp((latest.payload->'approval'->'completedDate'->>'epochMillis')::bigint / 1000))
        as completed_at,
    list_transform(cast(latest.payload->'approval'->'approvers' as json[]), lambda a: {
        'approver_user': coalesce(a->'approver'->>'accountId', a->'approver'->>'key', a->'approver'->>'name'),
        'decision': a->>'approverDecision'
    }) as approvers
from latest
where (latest.payload->>'issueId') in (select issue_id from staging.stg_jira__issues)
