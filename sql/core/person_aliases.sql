-- Every person id seen in the data (an alias), mapped to its canonical person (core.identities, configured or
-- matched automatically: the Jira id wins), with bots marked (logins ending in [bot], configured bot names).
-- Deleted accounts (GitHub's `ghost`, a Jira user without an account id) are the one person `deleted:user`.
-- depends_on: staging.stg_jira__users, staging.stg_github__pull_requests, staging.stg_github__issues, staging.stg_github__timeline_events, core.identities
-- key: raw_id
create or replace table core.person_aliases as
with jira_users as (
    select 'jira:' || user_id as raw_id, 'jira' as source, user_id as native_id, display_name,
        [user_id, user_name, display_name] as names, is_app
    from staging.stg_jira__users
),

github_logins as (
    select author_login as login from staging.stg_github__pull_requests
    union select merged_by_login from staging.stg_github__pull_requests
    union select unnest(requested_reviewers) from staging.stg_github__pull_requests
    union select author_login from staging.stg_github__issues
    union select unnest(assignees) from staging.stg_github__issues
    union select actor_login from staging.stg_github__timeline_events
    union select requested_reviewer from staging.stg_github__timeline_events
    union select assignee_login from staging.stg_github__timeline_events
    union select github from core.identities
),

github_users as (
    select 'github:' || login as raw_id, 'github' as source, login as native_id, login as display_name,
        [login] as names, false as is_app
    from github_logins
    where login is not null
),

identity_jira as (
    select 'jira:' || jira as raw_id, 'jira' as source, jira as native_id, jira as display_name, [jira] as names,
        false as is_app
    from core.identities
    where 'jira:' || jira not in (select raw_id from jira_users)
),

everyone as (
    select * from jira_users
    union all select * from github_users
    union all select * from identity_jira
    union all select 'deleted:user', 'deleted', 'deleted:user', 'Deleted user', ['deleted:user'], false
)

select
    everyone.raw_id,
    case when everyone.raw_id = 'github:ghost' then 'deleted:user' else coalesce('jira:' || ids.jira, everyone.raw_id)
    end as person_id,
    everyone.source,
    everyone.native_id,
    everyone.display_name,
    everyone.is_app
        or (everyone.source = 'github' and everyone.native_id like '%[bot]')
        or exists (select 1 from config.bots where list_contains(everyone.names, bots.name)) as is_bot
from everyone
left join core.identities as ids
    on everyone.source = 'github' and ids.github = everyone.native_id
