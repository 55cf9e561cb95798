-- One row per changed field of a Jira changelog history. An issue's histories come from the newest
-- complete changelog fetched for it (raw keeps every fetch; a later one is a superset, each history once),
-- else from those embedded in the issue (at most the 100 newest). Each payload is parsed once.
-- depends_on: staging.stg_jira__issues, raw.jira__changelogs
-- key: issue_id, history_id, item_index
create or replace table staging.stg_jira__change_items as
with newest_fetch as (
    -- the newest fetch per issue, on the narrow keys: the payloads are parsed once, after
    select id, arg_max(updated, (loaded_at, extract_id, updated)) as updated
    from raw.jira__changelogs
    group by id
),

fetched as (
    select p.issueId as issue_id, unnest(p.changeHistories) as h
    from (
        select from_json(changelogs.payload, '{
            "issueId": "VARCHAR",
            "changeHistories": [{
                "id": "VARCHAR", "created": "VARCHAR",
                "author": {"accountId": "VARCHAR", "key": "VARCHAR", "name": "VARCHAR", "displayName": "VARCHAR",
                           "emailAddress": "VARCHAR", "accountType": "VARCHAR"},
                "items": [{"field": "VARCHAR", "from": "VARCHAR", "fromString": "VARCHAR", "to": "VARCHAR",
                           "toString": "VARCHAR"}]
            }]
        }') as p
        from raw.jira__changelogs as changelogs
        semi join newest_fetch using (id, updated)
    )
),

embedded as (
    select issues.issue_id, unnest(issues.embedded_histories) as h
    from staging.stg_jira__issues as issues
    anti join newest_fetch on newest_fetch.id = issues.issue_id
    where issues.embedded_histories is not null
),

histories as (
    select issue_id, h from fetched
    union all
    select issue_id, h from embedded
),

items as (
    select
        histories.issue_id, histories.h.id as history_id, histories.h.author as author,
        histories.h.created as created,
        unnest(list_transform(histories.h.items, lambda x, i: {'item_index': i, 'item': x})) as it
    from histories
    semi join staging.stg_jira__issues as issues on issues.issue_id = histories.issue_id
)

select
    issue_id,
    history_id::bigint as history_id,  -- numeric in Cloud and Data Center; a unique string costs 4x to store
    it.item_index as item_index,
    coalesce(author.accountId, author.key, author.name) as author_user,
    author,
    created::timestamptz as created_at,
    it.item.field as field,
    lower(it.item.field) as field_lower,
    it.item."from" as from_value,
    it.item.fromString as from_string,
    it.item."to" as to_value,
    it.item.toString as to_string
from items
