-- asset: core.source_gaps
-- severity: warning
-- description: every optional source endpoint answered (Jira link types, fields, Service Management approvals); the marts lack what a refused one gives
-- Offending rows: one per endpoint a site lacked or refused, with the partitions it affected.
with gaps as (
    select source, partition, endpoint, status, what
    from core.source_gaps
)

select
    source,
    endpoint,
    status,
    what,
    string_agg(partition, ', ' order by partition) as partitions
from gaps
group by source, endpoint, status, what
order by source, endpoint
