-- The dimensions a BI user joins the marts to: people, teams, calendars, and what this snapshot is. Runs after
-- the marts are published; `pseudo` (id -> pseudonym) and `small_teams` come from privacy.sql and publish.py.

create schema if not exists pub.dims;

-- key: person_id
create table pub.dims.people as
with as_of as (
    select as_of from w.config.run
),

people as (
    -- one row per canonical person; where a person has several names, a full name (a Jira display name, with a
    -- space) wins over a login
    select
        person_id,
        arg_min(display_name, (not contains(coalesce(display_name, ''), ' '), display_name)) as display_name,
        bool_or(is_bot) as is_bot
    from w.core.people
    group by person_id
),

team_now as (
    select m.person_id, min(m.team) as team
    from w.core.memberships as m
    where (select as_of from as_of) >= m.valid_from and (select as_of from as_of) < m.valid_to
    group by m.person_id
)

select
    coalesce(ps.pseudonym, people.person_id) as person_id,
    case when ps.pseudonym is not null then ps.pseudonym else people.display_name end as display_name,
    case when team_now.team in (select team from small_teams) then 'other'
        else coalesce(team_now.team, 'unknown') end as team,
    people.is_bot
from people
left join pseudo as ps on ps.id = people.person_id
left join team_now using (person_id)
order by 1;

comment on table pub.dims.people is 'One row per person the marts name (person_id as in the marts: pseudonymised where docs/privacy.md says).';
comment on column pub.dims.people.person_id is 'jira:<accountId>, github:<login>, deleted:user, or person:<keyed hash> when pseudonymised.';
comment on column pub.dims.people.display_name is 'Jira display name or GitHub login; the pseudonym when pseudonymised.';
comment on column pub.dims.people.team is 'Configured team at as_of (other: teams under the minimum group size; unknown: none).';
comment on column pub.dims.people.is_bot is 'A bot (login ending in [bot], configured bot name, Jira app user).';

-- key: team
create table pub.dims.teams as
select t.team, t.name, t.calendar, t.github_team, t.members
from w.core.teams as t
where t.team not in (select team from small_teams)
union all
select 'other', 'Teams under the minimum group size', null, null, sum(t.members)::bigint
from w.core.teams as t
where t.team in (select team from small_teams)
having count(*) > 0
order by 1;

comment on table pub.dims.teams is 'The configured teams, unknown, and other (every team under the minimum group size, never by name).';
comment on column pub.dims.teams.team is 'Team key, as in every team column of the marts.';
comment on column pub.dims.teams.name is 'Display name.';
comment on column pub.dims.teams.calendar is 'Working calendar (dims.calendars) for business time.';
comment on column pub.dims.teams.github_team is 'GitHub team slug of the team, if configured.';
comment on column pub.dims.teams.members is 'Configured members.';

-- key: calendar
create table pub.dims.calendars as
select
    c.calendar, c.timezone, c.workdays, c.day_start, c.day_end,
    coalesce((select list(h.holiday order by h.holiday) from w.config.holidays as h where h.calendar = c.calendar),
        []::date[]) as holidays
from w.config.calendars as c
where c.calendar = 'default' or c.calendar in (select calendar from pub.dims.teams)
order by 1;

comment on table pub.dims.calendars is 'Working calendars: business time counts only these hours (teams under the minimum group size left out).';
comment on column pub.dims.calendars.calendar is 'Calendar key (dims.teams.calendar).';
comment on column pub.dims.calendars.timezone is 'IANA time zone of the working hours.';
comment on column pub.dims.calendars.workdays is 'ISO weekdays worked (1 = Monday).';
comment on column pub.dims.calendars.day_start is 'Start of the working day, local time.';
comment on column pub.dims.calendars.day_end is 'End of the working day, local time.';
comment on column pub.dims.calendars.holidays is 'Local dates not worked.';

create schema if not exists pub.meta;

-- key: as_of
create table pub.meta.snapshot as
select
    (select as_of from w.config.run) as as_of,
    getvariable('published_at') as published_at,
    (select min(created_at) from w.marts.item_flow) as first_item_at,
    coalesce((select value::integer from w.config.settings where key = 'min_group_size'), 3) as min_group_size,
    getvariable('pseudonymize') as pseudonymized,
    getvariable('storage_version') as storage_version,
    getvariable('flowlens_version') as flowlens_version;

comment on table pub.meta.snapshot is 'What this published file is: one row.';
comment on column pub.meta.snapshot.as_of is 'The instant the run measured at: open intervals are cut here.';
comment on column pub.meta.snapshot.published_at is 'When this file was written (UTC).';
comment on column pub.meta.snapshot.first_item_at is 'Creation of the oldest item: the data covers first_item_at to as_of.';
comment on column pub.meta.snapshot.min_group_size is 'Teams with fewer members are named other.';
comment on column pub.meta.snapshot.pseudonymized is 'Person ids and names are keyed hashes (privacy.pseudonymize).';
comment on column pub.meta.snapshot.storage_version is 'The oldest DuckDB storage version that holds this file''s types: DuckDB of that version and later open it.';
comment on column pub.meta.snapshot.flowlens_version is 'flowlens version that wrote it.';
