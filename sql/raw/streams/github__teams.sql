-- One row per organisation team as seen at each run (seen_at): the teams' history.
select (payload->>'organization') || '/' || (payload->>'slug') as id, payload->>'seen_at' as updated, payload, filename
from _pages
