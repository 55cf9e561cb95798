-- One row per changed field of a Jira changelog history, with its place in the issue's event order
-- (change_seq). An issue's histories come from the newest complete changelog fetched for it (raw keeps every
-- fetch; a later one is a superset, each history once), else from those embedded in the issue (at most the
-- 100 newest). Each payload is parsed once.
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
    select p.issueId as issue_id, p.changeHistories as histories
    from (
        select from_json(changelogs.payload, '{
            "issueId": "VARCHAR",
            "changeHistories": [{
                "id": "VARCHAR", "created": "VARCHAR",
                "author": {"accountId": "VARCHAR", "key": "VARCHAR", "name": "VARCHAR", "displayName": "VARCHAR",
                           "accountType": "VARCHAR"},
                "items": [{"field": "VARCHAR", "from": "VARCHAR", "fromString": "VARCHAR", "to": "VARCHAR",
                           "toString": "VARCHAR"}]
            }]
        }') as p
        from raw.jira__changelogs as changelogs
        semi join newest_fetch using (id, updated)
    )
),

embedded as (
    select issues.issue_id, issues.embedded_histories as histories
    from staging.stg_jira__issues as issues
    anti join newest_fetch on newest_fetch.id = issues.issue_id
    where issues.embedded_histories is not null
),

changelogs as (
    select issue_id, histories from fetched
    union all
    select issue_id, histories from embedded
),

ordered as (
    -- each issue's items in event order, sorted inside the issue's row (structs sort field by field):
    -- the instant, the history id, status items first, the item's place in its history
    select
        changelogs.issue_id,
        list_sort(flatten(list_transform(changelogs.histories, lambda h: list_transform(h.items, lambda x, i: {
            'created_at': h.created::timestamptz, 'history_id': h.id::bigint,
            'not_status': coalesce(lower(x.field) <> 'status', true), 'item_index': i,
            'author': h.author, 'item': x
        })))) as items
    from changelogs
    semi join staging.stg_jira__issues as issues on issues.issue_id = changelogs.issue_id
),

items as (
    select issue_id, unnest(items) as it, generate_subscripts(items, 1) as change_seq from ordered
)

select
    issue_id,
    it.history_id as history_id,  -- numeric in Cloud and Data Center; a unique string costs 4x to store
    it.item_index as item_index,
    change_seq,
    coalesce(it.author.accountId, it.author.key, it.author.name) as author_user,
    it.author as author,
    it.created_at as created_at,
    it.item.field as field,
    lower(it.item.field) as field_lower,
    it.item."from" as from_value,
    it.item.fromString as from_string,
    it.item."to" as to_value,
    it.item.toString as to_string
from items
