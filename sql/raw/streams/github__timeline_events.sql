-- Committed events have no id (a sha instead); the same event may be landed on several runs.
select
    (payload->>'repository') || '#' || (payload->>'issue_number') || ':'
        || coalesce(payload->'event'->>'id', payload->'event'->>'sha', payload->'event'->>'node_id',
                    md5(payload::varchar)) as id,
    md5(payload::varchar) as updated,
    payload,
    filename
from _pages
