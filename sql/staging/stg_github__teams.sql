-- One row per GitHub organisation team the runs saw (teams without configuration): its latest name and when
-- the runs first and last saw it.
-- depends_on: raw.github__teams
-- key: organization, slug
create or replace table staging.stg_github__teams as
with seen as (
    select
        payload->>'organization' as organization,
        payload->>'slug' as slug,
        payload->>'name' as name,
        (payload->>'seen_at')::timestamptz as seen_at
    from raw.github__teams
)

select
    organization,
    slug,
    arg_max(name, seen_at) as name,
    min(seen_at) as first_seen_at,
    max(seen_at) as last_seen_at
from seen
group by organization, slug
;

comment on table staging.stg_github__teams is 'GitHub organisation teams as the runs saw them (latest name).';
