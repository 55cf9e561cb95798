-- After an insert (sql/raw/insert_pages.sql, load timestamp $1): drop the older fetches of every version
-- this load brought again, so that the newest fetch of a version wins.
delete from raw.{table} as old
using (select id, updated, extract_id from raw.{table} where loaded_at = $1) as fresh
where old.id = fresh.id
    and old.updated is not distinct from fresh.updated
    and old.loaded_at <> $1
    and old.extract_id <= fresh.extract_id
