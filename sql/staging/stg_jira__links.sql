-- Current issue links, one row per link as seen from the issue holding it.
-- depends_on: staging.stg_jira__issues
-- key: issue_id, link_id
create or replace table staging.stg_jira__links as
with links as (
    select issues.issue_id, issues.issue_key, issues.item_id, unnest(cast(issues.issue_links as json[])) as link
    from staging.stg_jira__issues as issues
    where issues.issue_links is not null
)

select
    issue_id,
    issue_key,
    item_id,
    link->>'id' as link_id,
    link->'type'->>'name' as link_type,
    link->'type'->>'inward' as inward_description,
    link->'type'->>'outward' as outward_description,
    case when (link->'inwardIssue') is not null then 'inward' else 'outward' end as direction,
    coalesce(link->'inwardIssue'->>'key', link->'outwardIssue'->>'key') as other_issue_key,
    -- "this issue <description> other issue"
    case when (link->'inwardIssue') is not null then link->'type'->>'inward' else link->'type'->>'outward' end
        as description
from links
