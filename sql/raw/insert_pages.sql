-- Insert newly read pages (temp tables _pages, _files) into a raw stream table, one row per (id, updated):
-- the newest fetch of a version wins, so a damaged copy is repaired by fetching that version again
-- (sql/raw/replace_older.sql then drops the older copies). The keyed SELECT comes from
-- sql/raw/streams/<source>__<stream>.sql; $1 is the load's timestamp.
insert into raw.{table} (id, updated, partition, extract_id, loaded_at, payload)
with keyed as (
    {keys}
),

fresh as (
    select keyed.id, keyed.updated, files.partition, files.extract_id, keyed.payload
    from keyed
    join _files as files on files.filename = keyed.filename
    qualify row_number() over (partition by keyed.id, keyed.updated order by files.extract_id desc) = 1
)

select fresh.id, fresh.updated, fresh.partition, fresh.extract_id, $1, fresh.payload
from fresh
where not exists (
    -- a newer fetch of this version is already in
    select 1 from raw.{table} as old
    where old.id = fresh.id and old.updated is not distinct from fresh.updated and old.extract_id > fresh.extract_id
)
