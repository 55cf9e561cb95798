-- Who held each item when: Jira = the assignee (owner_id null = unassigned); GitHub = whoever holds the
-- ball per status visit (the author, or the requested reviewer while a request is open; issue assignee).
-- `is_migration`: the span began with an assignee change made by a workflow migration (no handoff).
-- depends_on: core.work_items, core.jira_changes, core.status_intervals
-- key: item_id, ord
create or replace table core.ownership_intervals as
with items as (
    select item_id, source, created_at, initial_assignee_id from core.work_items
),

changes as (
    select item_id, ord, created_at, from_person, to_person, is_migration
    from core.jira_changes
    where field_lower = 'assignee'
),

jira_spans as (
    select item_id, 0 as ord, created_at as started_at, initial_assignee_id as owner_id, false as is_migration
    from items
    where source = 'jira'
    union all
    select item_id, ord, created_at, to_person, is_migration from changes
),

jira_owned as (
    select
        item_id, ord, owner_id, started_at, is_migration,
        coalesce(lead(started_at) over w, (select as_of from config.run)) as ended_at,
        lead(started_at) over w is null as is_open
    from jira_spans
    window w as (partition by item_id order by ord)
),

github_owned as (
    select si.item_id, si.entered_ord as ord, si.owner_id, si.entered_at as started_at, si.exited_at as ended_at,
        si.is_open, false as is_migration
    from core.status_intervals as si
    join items using (item_id)
    where items.source = 'github'
)

select item_id, ord, owner_id, started_at, ended_at, is_open, is_migration from jira_owned
union all
select item_id, ord, owner_id, started_at, ended_at, is_open, is_migration from github_owned
