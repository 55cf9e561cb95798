-- Jira accounts joined to GitHub logins automatically: the same email address on both sites (each address
-- naming one account on each side), else the same display name, exactly, held by one Jira account and one
-- GitHub login only. A configured [[identities]] entry naming either side overrides the match.
-- depends_on: staging.stg_jira__users, staging.stg_github__team_members
-- key: jira
create or replace table core.identity_matches as
with jira_users as (
    select user_id as jira, display_name, lower(trim(email_address)) as email
    from staging.stg_jira__users
    where not is_app
),

github_users as (
    select login as github, arg_max(name, seen_at) as name, lower(trim(arg_max(email, seen_at))) as email
    from staging.stg_github__team_members
    group by login
),

configured as (
    select jira, github from config.identities
),

by_email as (
    select j.jira, g.github, 'same email' as reason, j.email as evidence
    from jira_users as j
    join github_users as g on g.email = j.email
    where j.email is not null and j.email <> ''
    qualify count(*) over (partition by j.email) = 1
),

unique_jira_names as (
    select display_name from jira_users where display_name is not null group by display_name having count(*) = 1
),

unique_github_names as (
    select name from github_users where name is not null group by name having count(*) = 1
),

by_name as (
    select j.jira, g.github, 'same display name' as reason, j.display_name as evidence
    from jira_users as j
    join unique_jira_names using (display_name)
    join github_users as g on g.name = j.display_name
    join unique_github_names on unique_github_names.name = g.name
    where j.jira not in (select jira from by_email)
      and g.github not in (select github from by_email)
),

matched as (
    select * from by_email
    union all
    select * from by_name
)

select matched.jira, matched.github, matched.reason, matched.evidence
from matched
where matched.jira not in (select jira from configured where jira is not null)
  and lower(matched.github) not in (select lower(github) from configured where github is not null)
;

comment on table core.identity_matches is 'Automatic Jira-GitHub identity joins (same email, else same unique display name); configured identities override them.';
comment on column core.identity_matches.reason is 'same email, or same display name';
comment on column core.identity_matches.evidence is 'the email address or display name both sites show';
