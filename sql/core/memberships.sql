-- Team memberships with validity ([valid_from, valid_to), open ends unbounded), by canonical person id.
-- depends_on: core.person_aliases
-- key: person_id, team, valid_from
create or replace table core.memberships as
select
    coalesce(people.person_id, m.person_id) as person_id,
    m.team,
    coalesce(m.valid_from, '-infinity'::timestamptz) as valid_from,
    coalesce(m.valid_to, 'infinity'::timestamptz) as valid_to
from config.memberships as m
left join (select distinct raw_id, person_id from core.person_aliases) as people on people.raw_id = m.person_id
