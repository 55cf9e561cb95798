-- What a publish hides (docs/privacy.md). Runs on the publishing connection: `w` is the working warehouse
-- (read-only), the results are temp tables; the variable `pseudonymize` is privacy.pseudonymize.

-- Configured teams with fewer members than the minimum group size the marts were built with: every team
-- column of the published file names them `other`, and their GitHub team reviewers `github-team:other`.
create or replace temp table small_teams as
select t.team, ct.github_team
from w.core.teams as t
join w.config.teams as ct using (team)
where t.members < coalesce((select value::integer from w.config.settings where key = 'min_group_size'), 3);

-- The people whose ids and names are published as pseudonyms (canonical ids, as the marts carry them):
-- everyone when pseudonymising, else the members (at any time) of a small team.
create or replace temp table hidden_people as
select distinct p.person_id
from w.core.people as p
where getvariable('pseudonymize')
    or p.person_id in (
        select m.person_id from w.core.memberships as m where m.team in (select team from small_teams)
    );
