-- Every Jira user object seen (Cloud: accountId; Data Center: key and name), to resolve changelog values.
-- depends_on: staging.stg_jira__issues, staging.stg_jira__change_items, raw.jira__approvals
-- key: user_id
create or replace table staging.stg_jira__users as
with issue_users as (
    select unnest([assignee, reporter, creator]) as u from staging.stg_jira__issues
),

authors as (
    select distinct author as u from staging.stg_jira__change_items
),

approvers as (
    select from_json(a->'approver', '{"accountId": "VARCHAR", "key": "VARCHAR", "name": "VARCHAR",
        "displayName": "VARCHAR", "emailAddress": "VARCHAR", "accountType": "VARCHAR"}') as u
    from (select unnest(json_extract(payload, '$.approval.approvers[*]')) as a from raw.jira__approvals)
),

unioned as (
    select u from issue_users
    union all select u from authors
    union all select u from approvers
)

select
    coalesce(u.accountId, u.key, u.name) as user_id,
    any_value(u.accountId) as account_id,
    any_value(u.key) as user_key,
    any_value(u.name) as user_name,
    -- one user seen under several names (a rename; a short name in one payload): the full name, then the first
    -- alphabetically; any_value picked one by thread timing
    arg_min(u.displayName, (not contains(coalesce(u.displayName, ''), ' '), u.displayName is null, u.displayName))
        as display_name,
    -- the address when the site shows it (Cloud hides it unless the user's profile makes it visible)
    any_value(nullif(u.emailAddress, '')) as email_address,
    -- Cloud apps (Automation for Jira, integrations) are not people
    coalesce(bool_or(u.accountType = 'app'), false) as is_app
from unioned
where coalesce(u.accountId, u.key, u.name) is not null
group by all
