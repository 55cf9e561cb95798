-- A raw table for a stream not listed in schema.sql ({table} is filled in by the loader).
create table if not exists raw.{table} (
    id varchar, updated varchar, partition varchar, extract_id varchar, loaded_at timestamptz, payload json
);
