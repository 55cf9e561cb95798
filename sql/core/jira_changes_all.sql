-- Every Jira change item (also those after as_of: an item's initial status and assignee come from its first
-- change), in event order: (created, history id), status items first within a
-- history, then item order. User fields (assignee) are resolved to canonical person ids (Data Center
-- changelogs carry user names or keys; a deleted account is `deleted:user`); status items carry names and
-- flow states. `is_migration`: the history holds a `Workflow` item (an admin migrated the issue to another
-- workflow): an administrative change.
-- depends_on: staging.stg_jira__change_items, staging.stg_jira__issues, staging.stg_jira__users, staging.stg_jira__statuses, core.person_aliases, core.status_map
-- key: item_id, ord
create or replace table core.jira_changes_all as
with issues as (
    select issue_id, item_id, project_key from staging.stg_jira__issues
),

sequence as (
    -- the window sorts only the narrow keys; the wide columns join back on the row id
    select
        rowid as change_row,
        row_number() over (
            partition by issue_id
            order by created_at, history_id, field_lower <> 'status', item_index
        ) as ord
    from staging.stg_jira__change_items
),

migrations as (
    select distinct issue_id, history_id
    from staging.stg_jira__change_items
    where field_lower = 'workflow'
),

ordered as (
    select
        issues.item_id, issues.project_key, ci.history_id, ci.created_at, ci.author_user, ci.field, ci.field_lower,
        ci.from_value, ci.from_string, ci.to_value, ci.to_string, sequence.ord,
        migrations.history_id is not null as is_migration,
        -- an author without any id is a deleted account (no author at all is automation)
        ci.author is not null and ci.author_user is null as by_deleted_user
    from staging.stg_jira__change_items as ci
    join sequence on sequence.change_row = ci.rowid
    join issues using (issue_id)
    left join migrations using (issue_id, history_id)
),

user_lookup as (
    select user_id, user_id as lookup, 0 as pref from staging.stg_jira__users
    union all
    select user_id, user_key, 1 from staging.stg_jira__users where user_key is not null
    union all
    select user_id, user_name, 2 from staging.stg_jira__users where user_name is not null
),

users as (
    select lookup, arg_min_null(user_id, pref) as user_id from user_lookup group by lookup
),

people as (
    select raw_id, person_id, is_bot from core.person_aliases
),

jira_people as (
    -- by the Jira user itself: no 'jira:' prefix built for each of millions of changes
    select substr(raw_id, 6) as jira_user, person_id, is_bot from core.person_aliases where raw_id like 'jira:%'
),

resolved as (
    select
        ordered.* exclude (from_value, to_value, author_user, by_deleted_user),
        case when ordered.by_deleted_user then 'deleted:user' else author.person_id end as author_id,
        coalesce(author.is_bot, false) as author_is_bot,
        case when ordered.field_lower = 'assignee' then 'jira:' || coalesce(fu.user_id, ordered.from_value) end
            as from_person,
        case when ordered.field_lower = 'assignee' then 'jira:' || coalesce(tu.user_id, ordered.to_value) end
            as to_person,
        coalesce(from_status.status_name, ordered.from_string) as from_status,
        coalesce(to_status.status_name, ordered.to_string) as to_status
    from ordered
    left join jira_people as author on author.jira_user = ordered.author_user
    left join users as fu on ordered.field_lower = 'assignee' and fu.lookup = ordered.from_value
    left join users as tu on ordered.field_lower = 'assignee' and tu.lookup = ordered.to_value
    left join staging.stg_jira__statuses as from_status
        on ordered.field_lower = 'status' and from_status.status_id = ordered.from_value
    left join staging.stg_jira__statuses as to_status
        on ordered.field_lower = 'status' and to_status.status_id = ordered.to_value
)

select
    resolved.* exclude (project_key, field, from_person, to_person, from_status, to_status),
    resolved.from_status,
    resolved.to_status,
    coalesce(fp.person_id, resolved.from_person) as from_person,
    coalesce(tp.person_id, resolved.to_person) as to_person,
    from_map.state as from_state,
    to_map.state as to_state
from resolved
left join people as fp on fp.raw_id = resolved.from_person
left join people as tp on tp.raw_id = resolved.to_person
left join core.status_map as from_map
    on resolved.field_lower = 'status' and from_map.project_key = resolved.project_key
    and from_map.status_name = resolved.from_status
left join core.status_map as to_map
    on resolved.field_lower = 'status' and to_map.project_key = resolved.project_key
    and to_map.status_name = resolved.to_status
