-- One row per GitHub team member per run that saw it: each run's snapshot of the organisations' teams, with
-- the member's name and email where GitHub shows them (what identity joins read).
-- depends_on: raw.github__team_members
-- key: organization, team, login, seen_at
create or replace table staging.stg_github__team_members as
select distinct on (organization, team, login, seen_at)
    payload->>'organization' as organization,
    payload->>'team' as team,
    payload->>'login' as login,
    nullif(payload->>'name', '') as name,
    nullif(payload->>'email', '') as email,
    (payload->>'seen_at')::timestamptz as seen_at
from raw.github__team_members
where payload->>'login' is not null
order by organization, team, login, seen_at, loaded_at desc
;

comment on table staging.stg_github__team_members is 'Each run''s snapshot of GitHub team memberships (login, name, email).';
