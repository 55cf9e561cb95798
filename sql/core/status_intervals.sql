-- One row per visit of an item to a status (Jira) or flow state (GitHub), cut at as_of (is_open).
-- Jira: the first visit starts at creation with the status the first status change left from (or the
-- current status); owner_id = the assignee at the visit's entry; a visit entered by a workflow migration
-- (`is_migration`) has no entered_by (so the visit it ends has no exited_by). Pull requests and GitHub
-- issues: the visits of core.github_visits.
-- depends_on: core.work_items, core.jira_changes, core.jira_changes_all, core.github_visits, core.status_map, core.calendar_intervals, core.calendar_hours, staging.stg_jira__issues, staging.stg_jira__statuses
-- key: item_id, visit_no
create or replace table core.status_intervals as
with as_of as (
    select as_of from config.run
),

items as (
    select item_id, source, kind, project, created_at, calendar, initial_assignee_id from core.work_items
),

-- Jira ---------------------------------------------------------------------------------------------

jira_current as (
    select issues.item_id, coalesce(st.status_name, issues.status_name) as status
    from staging.stg_jira__issues as issues
    left join staging.stg_jira__statuses as st on st.status_id = issues.status_id
),

status_changes as (
    select item_id, ord, created_at, author_id, author_is_bot, from_status, to_status, is_migration
    from core.jira_changes
    where field_lower = 'status'
),

first_from as (
    select item_id, arg_min_null(from_status, ord) as first_status
    from core.jira_changes_all
    where field_lower = 'status'
    group by item_id
),

jira_points as (
    -- the visits (creation, then each status change) and the assignee changes, in one stream per item
    select items.item_id, items.project, 0 as entered_ord, items.created_at as entered_at,
        coalesce(ff.first_status, cur.status) as status, null::varchar as entered_by, false as is_migration,
        null as assignee
    from items
    left join first_from as ff using (item_id)
    left join jira_current as cur using (item_id)
    where items.source = 'jira'
    union all
    select sc.item_id, null, sc.ord, sc.created_at, sc.to_status,
        -- automation and workflow migrations decide nothing
        case when not sc.author_is_bot and not sc.is_migration then sc.author_id end,
        sc.is_migration, null
    from status_changes as sc
    union all
    select item_id, null, ord, created_at, null, null, null, {'person': to_person}
    from core.jira_changes
    where field_lower = 'assignee'
),

jira_visits as (
    -- a visit's owner is the assignee after the last change of its entry instant (the RANGE frame's peers)
    select
        item_id, entered_ord, entered_at, status, entered_by, is_migration,
        last_value(assignee ignore nulls) over (
            partition by item_id order by entered_at range between unbounded preceding and current row
        ) as assignee_then
    from jira_points
    qualify assignee is null
),

jira_owned as (
    select
        v.item_id, v.entered_ord, v.entered_at, v.status, v.entered_by, v.is_migration,
        coalesce(map.state, 'active') as state,
        case when v.assignee_then is null then items.initial_assignee_id else v.assignee_then.person end
            as owner_id
    from jira_visits as v
    join items using (item_id)
    left join core.status_map as map on map.project_key = items.project and map.status_name = v.status
),

-- Both ---------------------------------------------------------------------------------------------

visits as (
    select item_id, entered_ord, entered_at, status, state, owner_id, entered_by, is_migration from jira_owned
    union all
    select item_id, entered_ord, entered_at, status, state, owner_id, entered_by, false from core.github_visits
),

sequenced as (
    select
        visits.*,
        row_number() over w as visit_no,
        lead(entered_at) over w as next_entered_at,
        lead(entered_by) over w as exited_by,
        lead(state) over w as next_state,
        lead(status) over w as next_status,
        lag(state) over w as prev_state
    from visits
    window w as (partition by item_id order by entered_ord)
),

timed as (
    select
        sequenced.* exclude (next_entered_at),
        coalesce(next_entered_at, (select as_of from as_of)) as exited_at,
        next_entered_at is null as is_open,
        items.calendar
    from sequenced
    join items using (item_id)
)

select
    timed.item_id, timed.visit_no, timed.status, timed.state, timed.entered_at, timed.exited_at,
    timed.owner_id, timed.is_open,
    epoch(timed.exited_at) - epoch(timed.entered_at) as calendar_s,
    core.worked(e, timed.exited_at)
        - core.worked(s, timed.entered_at) as business_s,
    timed.entered_by, timed.exited_by, timed.prev_state, timed.next_state, timed.next_status,
    timed.entered_ord, timed.calendar, timed.is_migration
from timed
left join core.calendar_hours as s
    on s.calendar = timed.calendar and s.hour_no = core.hour_no(timed.entered_at)
left join core.calendar_hours as e
    on e.calendar = timed.calendar and e.hour_no = core.hour_no(timed.exited_at)
