-- One row per changed field within a changelog history.
-- depends_on: staging.stg_jira__histories
create or replace table staging.stg_jira__change_items as
with items as (
    select
        issue_id, history_id, history_seq, author_user, created_at,
        unnest(list_transform(items, lambda x, i: {'item_index': i, 'item': x})) as it
    from staging.stg_jira__histories
)

select
    issue_id,
    history_id,
    history_seq,
    it.item_index as item_index,
    author_user,
    created_at,
    it.item.field as field,
    lower(it.item.field) as field_lower,
    it.item.fieldtype as fieldtype,
    it.item.fieldId as field_id,
    it.item."from" as from_value,
    it.item.fromString as from_string,
    it.item."to" as to_value,
    it.item.toString as to_string
from items
