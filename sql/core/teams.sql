-- The teams, plus `unknown`, with their calendar, member count and where they came from: the configured
-- [[teams]] when there are any (configured teams always win); else the GitHub organisations' teams (keyed by
-- slug; the same slug in two organisations is one team) and the Jira Team field's values that name no
-- GitHub team, on the default calendar.
-- depends_on: core.memberships, staging.stg_github__teams, staging.stg_jira__issues
-- key: team
create or replace table core.teams as
with configured as (
    select team, name, calendar, github_team, 'configured' as source from config.teams
),

github as (
    select slug as team, arg_max(name, last_seen_at) as name, 'default' as calendar, slug as github_team,
        'github organisation teams' as source
    from staging.stg_github__teams
    where not exists (select 1 from config.teams)
    group by slug
),

jira as (
    select distinct team_field_value as team, team_field_value as name, 'default' as calendar,
        null as github_team, 'jira team field' as source
    from staging.stg_jira__issues
    where not exists (select 1 from config.teams)
      and team_field_value is not null
      and lower(team_field_value) not in (select lower(team) from github union select lower(name) from github)
),

found as (
    select * from configured
    union all select * from github
    union all select * from jira
),

with_unknown as (
    select * from found
    union all
    select 'unknown', 'Unknown', 'default', null, 'default'
    where 'unknown' not in (select team from found)
)

select
    with_unknown.*,
    (select count(distinct m.person_id) from core.memberships as m where m.team = with_unknown.team) as members
from with_unknown
;

comment on column core.teams.source is 'configured, github organisation teams, jira team field, or default (unknown)';

-- The team of a person (or GitHub team) at instant t: the configured membership valid at t; a GitHub team
-- maps through its slug; else `fallback` (a Jira item's Team field); else `unknown` (also for nobody).
-- The memberships subquery is correlated on the person only and t filters its list: correlated on (pid, t),
-- DuckDB would deduplicate and join back millions of (person, instant) pairs in every model that calls it.
create or replace macro core.team_of(pid, t, fallback) as case when pid is null then 'unknown' else coalesce(
    list_min(list_transform(list_filter(
        (select list({'team': m.team, 'valid_from': m.valid_from, 'valid_to': m.valid_to})
         from core.memberships as m where m.person_id = pid),
        lambda span: t >= span.valid_from and t < span.valid_to), lambda span: span.team)),
    (select min(ct.team) from core.teams as ct
     where pid like 'github-team:%' and ct.github_team = split_part(pid, '/', 2)),
    case when pid like 'github-team:%' then 'unknown' end,
    fallback,
    'unknown'
) end
