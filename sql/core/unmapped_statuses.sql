-- Data quality: statuses not configured by name and mapped by a pattern they might not mean, by their Jira
-- category alone, or (a status the site no longer lists) by a done-like name, the resolution its entering
-- histories set or cleared, or the `active` fallback; with the item time each carries.
-- depends_on: core.status_map, core.status_intervals, core.work_items
-- key: project_key, status_name
create or replace view core.unmapped_statuses as
with unmapped as (
    select project_key, status_name, status_category, state, mapped_by, is_listed
    from core.status_map
    where mapped_by = 'category' or not is_listed and mapped_by <> 'project'
),

jira_time as (
    -- item time per (project, status), over every Jira visit up to as_of
    select items.project as project_key, si.status as status_name, count(distinct si.item_id) as items,
        sum(si.calendar_s) as item_time_s
    from core.status_intervals as si
    join core.work_items as items using (item_id)
    where items.source = 'jira'
    group by all
),

project_time as (
    select project_key, sum(item_time_s) as project_time_s from jira_time group by all
)

select
    u.project_key, u.status_name, u.status_category, u.state, u.mapped_by, u.is_listed,
    coalesce(t.items, 0) as items,
    coalesce(t.item_time_s, 0) as item_time_s,
    coalesce(t.item_time_s / nullif(p.project_time_s, 0), 0) as share_of_item_time
from unmapped as u
left join jira_time as t using (project_key, status_name)
left join project_time as p using (project_key)
order by u.project_key, u.status_name
