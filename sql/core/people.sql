-- One row per canonical person (core.person_aliases maps every id seen to it), with one display name: a full
-- name (a Jira display name, with a space) wins over a login, then the alphabetically first.
-- depends_on: core.person_aliases
-- key: person_id
create or replace table core.people as
with aliases as (
    select * from core.person_aliases
)

select
    person_id,
    arg_min(display_name, (not contains(coalesce(display_name, ''), ' '), display_name is null, display_name))
        as display_name,
    bool_or(is_bot) as is_bot,
    list(distinct source order by source) as sources,
    count(*) as aliases
from aliases
group by person_id
;

comment on table core.people is 'One row per person (canonical id), with a chosen display name; core.person_aliases lists every id that maps to it.';
comment on column core.people.person_id is 'jira:<accountId> or jira:<user key>, github:<login> (not joined to Jira), deleted:user.';
comment on column core.people.display_name is 'A full name (with a space) over a login; then the alphabetically first.';
comment on column core.people.is_bot is 'Any alias is a bot (app user, [bot] login, configured bot name).';
comment on column core.people.sources is 'Where the person appears: jira, github, deleted.';
comment on column core.people.aliases is 'How many ids (core.person_aliases) map to the person.';
