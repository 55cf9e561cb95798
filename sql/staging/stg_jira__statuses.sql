-- The site's statuses with their category.
-- depends_on: raw.jira__statuses
-- key: status_id
create or replace table staging.stg_jira__statuses as
select
    payload->>'id' as status_id,
    payload->>'name' as status_name,
    payload->'statusCategory'->>'key' as status_category
from raw.jira__statuses
qualify row_number() over (partition by payload->>'id' order by loaded_at desc, extract_id desc) = 1
