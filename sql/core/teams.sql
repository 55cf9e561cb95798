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
create or replace macro core.team_of(pid, t, fallback) as case when pid is null then 'unknown' else coalesce(
    (select min(m.team) from core.memberships as m
     where m.person_id = pid and t >= m.valid_from and t < m.valid_to),
    (select min(ct.team) from config.teams as ct
     where pid like 'github-team:%' and ct.github_team = split_part(pid, '/', 2)),
    case when pid like 'github-team:%' then 'unknown' end,
    fallback,
    'unknown'
) end
