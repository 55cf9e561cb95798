-- Every (project, status) seen, mapped to a flow state: exact per-project name, then patterns in order,
-- then the Jira status category. `mapped_by` = 'category' marks what a data-quality check lists.
-- depends_on: staging.stg_jira__issues, staging.stg_jira__change_items, staging.stg_jira__statuses
-- key: project_key, status_name
create or replace table core.status_map as
with statuses as (
    select * from staging.stg_jira__statuses
),

seen as (
    select project_key, status_id, status_name, status_category from staging.stg_jira__issues
    union
    select issues.project_key, items.from_value, items.from_string, null
    from staging.stg_jira__change_items as items
    join staging.stg_jira__issues as issues using (issue_id)
    where items.field_lower = 'status'
    union
    select issues.project_key, items.to_value, items.to_string, null
    from staging.stg_jira__change_items as items
    join staging.stg_jira__issues as issues using (issue_id)
    where items.field_lower = 'status'
),

named as (
    -- the name and category of the status by id where the site lists it
    select distinct
        seen.project_key,
        coalesce(by_id.status_name, seen.status_name) as status_name,
        coalesce(by_id.status_category, seen.status_category, by_name.status_category) as status_category
    from seen
    left join statuses as by_id on by_id.status_id = seen.status_id
    left join statuses as by_name on lower(by_name.status_name) = lower(seen.status_name)
    where coalesce(by_id.status_name, seen.status_name) is not null
),

one_per_name as (
    select project_key, status_name, max(status_category) as status_category
    from named
    group by all
),

pattern_hits as (
    select n.project_key, n.status_name, arg_min_null(p.state, p.ordinal) as state
    from one_per_name as n
    join config.status_patterns as p on regexp_matches(n.status_name, p.pattern, 'i')
    group by all
)

select
    n.project_key,
    n.status_name,
    n.status_category,
    coalesce(exact.state, hits.state, case n.status_category
        when 'new' then 'backlog' when 'done' then 'done' else 'active' end) as state,
    case when exact.state is not null then 'project' when hits.state is not null then 'pattern'
        else 'category' end as mapped_by
from one_per_name as n
left join config.status_names as exact
    on exact.project = n.project_key and lower(exact.status_name) = lower(n.status_name)
left join pattern_hits as hits on hits.project_key = n.project_key and hits.status_name = n.status_name
