-- Every (project, status) seen, mapped to a flow state: exact per-project name, then patterns in order,
-- then the Jira status category. A status the site's /status no longer lists (deleted in a workflow
-- migration: its category is unknown) maps by the patterns, then by done-like names (also translated), then
-- by the resolution its entering histories set (done) or cleared (active), else `active`.
-- `mapped_by` says which rule decided; core.unmapped_statuses lists the category- and unlisted-mapped ones.
-- depends_on: staging.stg_jira__issues, staging.stg_jira__change_items, staging.stg_jira__statuses
-- key: project_key, status_name
create or replace table core.status_map as
with statuses as (
    select * from staging.stg_jira__statuses
),

status_items as (
    select issues.project_key, items.issue_id, items.history_id, items.from_value, items.from_string,
        items.to_value, items.to_string
    from staging.stg_jira__change_items as items
    join staging.stg_jira__issues as issues using (issue_id)
    where items.field_lower = 'status'
),

seen as (
    select project_key, status_id, status_name, status_category from staging.stg_jira__issues
    union
    select project_key, from_value, from_string, null from status_items
    union
    select project_key, to_value, to_string, null from status_items
),

named as (
    -- the name and category of the status by id where the site lists it (else by name)
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
),

resolution_items as (
    -- per history: whether it set the resolution to a value or cleared it
    select
        issue_id, history_id,
        bool_or(coalesce(to_value, to_string, '') <> '') as sets_resolution,
        bool_or(coalesce(to_value, to_string, '') = '' and coalesce(from_value, from_string, '') <> '')
            as clears_resolution
    from staging.stg_jira__change_items
    where field_lower = 'resolution'
    group by all
),

entered_with_resolution as (
    -- for each status, how often the histories that entered it set or cleared the resolution
    select
        si.project_key, si.to_string as status_name,
        count(*) filter (where r.sets_resolution) as entries_setting,
        count(*) filter (where r.clears_resolution and not r.sets_resolution) as entries_clearing
    from status_items as si
    join resolution_items as r using (issue_id, history_id)
    group by all
),

evidence as (
    select
        n.*,
        exact.state as configured_state,
        hits.state as pattern_state,
        -- done-like names, English and common translations (used for unlisted statuses only: a listed
        -- status has its category)
        regexp_matches(n.status_name, '(^|[^[:alpha:]])(resolved|closed|done|completed?|cancell?ed|won''?t do'
            || '|erledigt|geschlossen|abgeschlossen|fertig|termin[ée]e?|ferm[ée]e?|conclu[íi]do|fechado|cancelado'
            || '|resuelto|cerrado|hecho)($|[^[:alpha:]])', 'i')
            or regexp_matches(n.status_name, '已完成|完成|已关闭|已解决|已取消|完了') as is_done_name,
        coalesce(r.entries_setting, 0) as entries_setting,
        coalesce(r.entries_clearing, 0) as entries_clearing
    from one_per_name as n
    left join config.status_names as exact
        on exact.project = n.project_key and lower(exact.status_name) = lower(n.status_name)
    left join pattern_hits as hits on hits.project_key = n.project_key and hits.status_name = n.status_name
    left join entered_with_resolution as r on r.project_key = n.project_key and r.status_name = n.status_name
),

decided as (
    select
        evidence.*,
        case
            when configured_state is not null then 'project'
            when pattern_state is not null then 'pattern'
            when status_category is not null then 'category'
            when is_done_name then 'done_name'
            when entries_setting > entries_clearing then 'resolution_set'
            when entries_clearing > 0 then 'resolution_cleared'
            else 'fallback'
        end as mapped_by
    from evidence
)

select
    project_key,
    status_name,
    status_category,
    status_category is not null as is_listed,
    case mapped_by
        when 'project' then configured_state
        when 'pattern' then pattern_state
        when 'category' then case status_category when 'new' then 'backlog' when 'done' then 'done' else 'active' end
        when 'done_name' then 'done'
        when 'resolution_set' then 'done'
        else 'active'
    end as state,
    mapped_by
from decided
;

comment on table core.status_map is 'Every (Jira project, status name) seen, with its flow state and the rule that mapped it.';
comment on column core.status_map.status_category is 'Jira status category (new, indeterminate, done); null for a status the site no longer lists.';
comment on column core.status_map.is_listed is 'The site''s /status lists it (false: deleted, e.g. in a workflow migration).';
comment on column core.status_map.mapped_by is 'project (configured name), pattern, category, done_name, resolution_set, resolution_cleared or fallback (an unlisted status with no evidence: active).';
