-- One row per changelog history, the union of histories embedded in issues (at most 100 newest) and the
-- complete histories fetched separately, deduplicated by history id; items parsed into a typed list.
-- depends_on: staging.stg_jira__issues, raw.jira__changelogs
create or replace table staging.stg_jira__histories as
with embedded as (
    select issues.issue_id, unnest(issues.embedded_histories) as h
    from staging.stg_jira__issues as issues
    where issues.embedded_histories is not null
),

fetched as (
    select p.issueId as issue_id, unnest(p.changeHistories) as h
    from (
        select from_json(payload, '{
            "issueId": "VARCHAR",
            "changeHistories": [{
                "id": "VARCHAR", "created": "VARCHAR",
                "author": {"accountId": "VARCHAR", "key": "VARCHAR", "name": "VARCHAR", "displayName": "VARCHAR",
                           "accountType": "VARCHAR"},
                "items": [{"field": "VARCHAR", "fieldtype": "VARCHAR", "fieldId": "VARCHAR", "from": "VARCHAR",
                           "fromString": "VARCHAR", "to": "VARCHAR", "toString": "VARCHAR"}]
            }]
        }') as p
        from raw.jira__changelogs
    )
),

unioned as (
    select issue_id, h from embedded
    union all
    select issue_id, h from fetched
)

select
    unioned.issue_id,
    h.id as history_id,
    coalesce(try_cast(h.id as bigint), 0) as history_seq,
    coalesce(h.author.accountId, h.author.key, h.author.name) as author_user,
    h.author as author,
    h.created::timestamptz as created_at,
    h.items as items
from unioned
semi join staging.stg_jira__issues as issues on issues.issue_id = unioned.issue_id
qualify row_number() over (partition by unioned.issue_id, h.id order by h.created) = 1
