-- One row per Jira issue (its latest version), typed. Issues missing from a project's latest reconcile
-- snapshot (raw.jira__issue_ids) were deleted or moved away and are dropped. Each payload is parsed once.
-- depends_on: raw.jira__issues, raw.jira__issue_ids, raw.jira__fields
-- key: issue_id
-- The site's ids of the Team and Flagged custom fields, so that the payload's one parse reads them too.
set variable jira_team_field = (
    select coalesce(max(payload->>'id') filter (where lower(payload->>'name') = 'team'), 'customfield_10001')
    from raw.jira__fields
);

set variable jira_flagged_field = (
    select coalesce(max(payload->>'id') filter (where lower(payload->>'name') = 'flagged'), 'customfield_10021')
    from raw.jira__fields
);

create or replace table staging.stg_jira__issues as
with superseded as (
    -- older versions of an issue, found on the narrow keys so that only the payloads kept are parsed
    select id, updated
    from raw.jira__issues
    qualify row_number() over (
        partition by id order by try_cast(updated as timestamptz) desc nulls last, loaded_at desc, extract_id desc
    ) > 1
),

latest as (
    select * from raw.jira__issues anti join superseded using (id, updated)
),

reconcile as (
    -- the newest reconcile snapshot per project
    select partition, id
    from raw.jira__issue_ids
    qualify dense_rank() over (partition by partition order by updated desc) = 1
),

parsed as (
    select
        latest.id,
        latest.partition,
        latest.loaded_at,
        from_json(latest.payload, '{
            "key": "VARCHAR",
            "fields": {
                "summary": "VARCHAR", "issuetype": {"name": "VARCHAR"}, "project": {"key": "VARCHAR"},
                "status": {"id": "VARCHAR", "name": "VARCHAR", "statusCategory": {"key": "VARCHAR"}},
                "assignee": {"accountId": "VARCHAR", "key": "VARCHAR", "name": "VARCHAR", "displayName": "VARCHAR",
                             "emailAddress": "VARCHAR", "accountType": "VARCHAR"},
                "reporter": {"accountId": "VARCHAR", "key": "VARCHAR", "name": "VARCHAR", "displayName": "VARCHAR",
                             "emailAddress": "VARCHAR", "accountType": "VARCHAR"},
                "creator": {"accountId": "VARCHAR", "key": "VARCHAR", "name": "VARCHAR", "displayName": "VARCHAR",
                            "emailAddress": "VARCHAR", "accountType": "VARCHAR"},
                "created": "VARCHAR", "updated": "VARCHAR", "resolution": {"name": "VARCHAR"},
                "resolutiondate": "VARCHAR", "priority": {"name": "VARCHAR"}, "labels": ["VARCHAR"],
                "parent": {"key": "VARCHAR"}, "issuelinks": "JSON",
                "' || getvariable('jira_team_field') || '": "JSON", "' || getvariable('jira_flagged_field') || '": "JSON"
            },
            "changelog": {"histories": [{
            "id": "VARCHAR", "created": "VARCHAR",
            "author": {"accountId": "VARCHAR", "key": "VARCHAR", "name": "VARCHAR", "displayName": "VARCHAR",
                       "accountType": "VARCHAR"},
            "items": [{"field": "VARCHAR", "from": "VARCHAR", "fromString": "VARCHAR", "to": "VARCHAR",
                       "toString": "VARCHAR"}]
        }]}
        }') as p
    from latest
),

renamed as (
    select
        id as issue_id,
        p.key as issue_key,
        'jira:' || p.key as item_id,
        p.fields.project.key as project_key,
        partition,
        p.fields.issuetype.name as issue_type,
        p.fields.summary as summary,
        p.fields.status.id as status_id,
        p.fields.status.name as status_name,
        p.fields.status.statusCategory.key as status_category,
        coalesce(p.fields.assignee.accountId, p.fields.assignee.key, p.fields.assignee.name) as assignee_user,
        coalesce(p.fields.reporter.accountId, p.fields.reporter.key, p.fields.reporter.name) as reporter_user,
        p.fields.created::timestamptz as created_at,
        p.fields.updated::timestamptz as updated_at,
        p.fields.resolution.name as resolution,
        try_cast(p.fields.resolutiondate as timestamptz) as resolved_at,
        p.fields.priority.name as priority,
        coalesce(p.fields.labels, []) as labels,
        p.fields.parent.key as parent_key,
        p.fields.issuelinks as issue_links,
        p.fields.assignee as assignee,
        p.fields.reporter as reporter,
        p.fields.creator as creator,
        struct_extract(p.fields, getvariable('jira_team_field')) as team_value,
        struct_extract(p.fields, getvariable('jira_flagged_field')) as flagged_value,
        p.changelog.histories as embedded_histories,
        loaded_at
    from parsed
)

select
    renamed.* exclude (team_value, flagged_value),
    case
        when json_type(team_value) = 'OBJECT'
            then coalesce(team_value->>'value', team_value->>'name', team_value->>'title', team_value->>'id')
        when json_type(team_value) in ('VARCHAR', 'BIGINT', 'UBIGINT') then team_value->>'$'
    end as team_field_value,
    coalesce(json_type(flagged_value) = 'ARRAY' and json_array_length(flagged_value) > 0, false)
        or coalesce(json_type(flagged_value) = 'OBJECT', false) as is_flagged
from renamed
where not exists (select 1 from reconcile where reconcile.partition = renamed.partition)
    or exists (
        select 1 from reconcile
        where reconcile.partition = renamed.partition and reconcile.id = renamed.issue_id
    )
