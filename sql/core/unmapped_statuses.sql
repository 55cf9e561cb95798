-- Data quality: statuses neither configured nor matched by a pattern, mapped by their category only.
-- depends_on: core.status_map
-- key: project_key, status_name
create or replace view core.unmapped_statuses as
select project_key, status_name, status_category, state
from core.status_map
where mapped_by = 'category'
order by project_key, status_name
