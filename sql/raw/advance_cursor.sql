-- Store a complete extract's cursor; a later extract (ids sort by time) wins over an earlier one.
insert into raw.cursors (source, partition, cursor, extract_id, updated_at)
values ($1, $2, $3::json, $4, $5)
on conflict (source, partition) do update
set cursor = excluded.cursor, extract_id = excluded.extract_id, updated_at = excluded.updated_at
where excluded.extract_id >= raw.cursors.extract_id
