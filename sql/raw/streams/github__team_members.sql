-- One row per team member as seen at each run (seen_at): memberships over time are the runs' snapshots.
select (payload->>'organization') || '/' || (payload->>'team') || '/' || (payload->>'login') as id,
    payload->>'seen_at' as updated, payload, filename
from _pages
