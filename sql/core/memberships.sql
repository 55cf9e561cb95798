-- Team memberships with validity ([valid_from, valid_to), open ends unbounded), by canonical person id.
-- With [[teams]] configured: their members, as configured. Without: the GitHub organisation teams' members
-- as each run saw them; a membership runs from the run that first saw it (unbounded before the first run:
-- the sites keep no history) to the first run that no longer did, so a person who moves team keeps the old
-- team for the time before the move.
-- depends_on: core.person_aliases, staging.stg_github__team_members
-- key: person_id, team, valid_from
create or replace table core.memberships as
with configured as (
    select person_id as raw_id, team, valid_from, valid_to, 'configured' as source
    from config.memberships
),

runs as (  -- every run that read the organisations' teams, in order
    select seen_at, row_number() over (order by seen_at) as run_number
    from (select distinct seen_at from staging.stg_github__team_members)
),

seen as (
    select distinct 'github:' || members.login as raw_id, members.team, runs.run_number
    from staging.stg_github__team_members as members
    join runs using (seen_at)
    where not exists (select 1 from config.teams)
),

islands as (  -- runs in a row that saw the membership share an island number
    select raw_id, team, run_number,
        run_number - row_number() over (partition by raw_id, team order by run_number) as island
    from seen
),

spans as (
    select raw_id, team, min(run_number) as first_run, max(run_number) as last_run
    from islands
    group by raw_id, team, island
),

discovered as (
    select
        spans.raw_id,
        spans.team,
        case when spans.first_run > 1 then first_run.seen_at end as valid_from,
        after_run.seen_at as valid_to,
        'github organisation teams' as source
    from spans
    join runs as first_run on first_run.run_number = spans.first_run
    left join runs as after_run on after_run.run_number = spans.last_run + 1
),

unioned as (
    select * from configured
    union all
    select * from discovered
)

select distinct
    coalesce(people.person_id, unioned.raw_id) as person_id,
    unioned.team,
    coalesce(unioned.valid_from, '-infinity'::timestamptz) as valid_from,
    coalesce(unioned.valid_to, 'infinity'::timestamptz) as valid_to,
    unioned.source
from unioned
left join (select distinct raw_id, person_id from core.person_aliases) as people on people.raw_id = unioned.raw_id
;

comment on table core.memberships is 'Team memberships over time: configured, else the GitHub teams as the runs saw them.';
comment on column core.memberships.source is 'configured, or github organisation teams';
