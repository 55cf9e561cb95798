-- The configured teams, plus `unknown`, with their calendar and configured member count.
-- depends_on: core.memberships
-- key: team
create or replace table core.teams as
with configured as (
    select team, name, calendar, github_team from config.teams
    union all
    select 'unknown', 'Unknown', 'default', null
    where 'unknown' not in (select team from config.teams)
)

select
    configured.*,
    (select count(distinct m.person_id) from core.memberships as m where m.team = configured.team) as members
from configured
;

-- The team of a person (or GitHub team) at instant t: the configured membership valid at t; a GitHub team
-- maps through its slug; else `fallback` (a Jira item's Team field); else `unknown` (also for nobody).
-- The memberships subquery is correlated on the person only and t filters its list: correlated on (pid, t),
-- DuckDB would deduplicate and join back millions of (person, instant) pairs in every model that calls it.
create or replace macro core.team_of(pid, t, fallback) as case when pid is null then 'unknown' else coalesce(
    list_min(list_transform(list_filter(
        (select list({'team': m.team, 'valid_from': m.valid_from, 'valid_to': m.valid_to})
         from core.memberships as m where m.person_id = pid),
        lambda span: t >= span.valid_from and t < span.valid_to), lambda span: span.team)),
    (select min(ct.team) from config.teams as ct
     where pid like 'github-team:%' and ct.github_team = split_part(pid, '/', 2)),
    case when pid like 'github-team:%' then 'unknown' end,
    fallback,
    'unknown'
) end
