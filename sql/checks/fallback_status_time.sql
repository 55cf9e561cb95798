-- asset: core.unmapped_statuses
-- severity: warning
-- description: at most 5% of a project's item time lies in statuses the site no longer lists and no name or resolution maps (guessed `active`)
-- Offending rows: one per project above the share, naming the statuses.
with guessed as (
    select project_key, status_name, share_of_item_time
    from core.unmapped_statuses
    where mapped_by = 'fallback'
)

select
    project_key,
    string_agg(status_name, ', ' order by share_of_item_time desc) as statuses,
    round(sum(share_of_item_time), 4) as share_of_item_time
from guessed
group by project_key
having sum(share_of_item_time) > 0.05
order by project_key
