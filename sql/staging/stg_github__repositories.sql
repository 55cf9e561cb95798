-- One row per repository.
-- depends_on: raw.github__repositories
-- key: repository_id
create or replace table staging.stg_github__repositories as
select
    id as repository_id,
    payload->>'full_name' as repository,
    payload->'owner'->>'login' as org,
    coalesce((payload->>'archived')::boolean, false) as is_archived,
    try_cast(payload->>'created_at' as timestamptz) as created_at
from raw.github__repositories
qualify row_number() over (partition by id order by loaded_at desc) = 1
