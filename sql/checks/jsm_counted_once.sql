-- asset: marts.approval_waits
-- severity: blocking
-- description: a JSM approval is one request: no approval-state visit of the same item overlaps it
-- Offending rows: pairs of rows counting one approval twice.
select status_row.item_id, status_row.requested_at as visit_requested_at, jsm_row.requested_at as jsm_requested_at
from marts.approval_waits as status_row
join marts.approval_waits as jsm_row
    on jsm_row.item_id = status_row.item_id and jsm_row.source_kind = 'jsm'
    and jsm_row.requested_at < coalesce(status_row.decided_at, 'infinity')
    and coalesce(jsm_row.decided_at, 'infinity') > status_row.requested_at
where status_row.source_kind = 'jira_status'
order by all
