-- asset: marts.item_flow
-- severity: blocking
-- description: no item's cycle time exceeds its age (creation to finish, or to as_of while open)
-- Offending rows: items whose cycle started before they existed or ran past their end.
select item_id, created_at, started_at, finished_at, cycle_s,
    epoch(coalesce(finished_at, (select as_of from config.run))) - epoch(created_at) as age_s
from marts.item_flow
where cycle_s > epoch(coalesce(finished_at, (select as_of from config.run))) - epoch(created_at) + 1
order by item_id
