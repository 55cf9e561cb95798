-- Who held each item when: Jira = the assignee (owner_id null = unassigned); GitHub = whoever holds the
-- ball per status visit (the author, or the requested reviewer while a request is open; issue assignee).
-- depends_on: core.work_items, core.jira_changes, core.jira_changes_all, core.status_intervals
-- key: item_id, ord
create or replace table core.ownership_intervals as
with items as (
    select item_id, source, created_at, current_assignee_id from core.work_items
),

changes as (
    select item_id, ord, created_at, from_person, to_person
    from core.jira_changes
    where field_lower = 'assignee'
),

jira_spans as (
    select items.item_id, 0 as ord, items.created_at as started_at,
        case when first_change.item_id is null then items.current_assignee_id
            else first_change.from_person end as owner_id
    from items
    left join (
        select item_id, arg_min_null(from_person, ord) as from_person
        from core.jira_changes_all
        where field_lower = 'assignee'
        group by item_id
    ) as first_change using (item_id)
    where items.source = 'jira'
    union all
    select item_id, ord, created_at, to_person from changes
),

jira_owned as (
    select
        item_id, ord, owner_id, started_at,
        coalesce(lead(started_at) over w, (select as_of from config.run)) as ended_at,
        lead(started_at) over w is null as is_open
    from jira_spans
    window w as (partition by item_id order by ord)
),

github_owned as (
    select si.item_id, si.entered_ord as ord, si.owner_id, si.entered_at as started_at, si.exited_at as ended_at,
        si.is_open
    from core.status_intervals as si
    join items using (item_id)
    where items.source = 'github'
)

select item_id, ord, owner_id, started_at, ended_at, is_open from jira_owned
union all
select item_id, ord, owner_id, started_at, ended_at, is_open from github_owned
