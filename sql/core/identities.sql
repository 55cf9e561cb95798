-- Every Jira account - GitHub login join: the configured [[identities]], then the automatic matches they do
-- not override (core.identity_matches). core.person_aliases reads this, not the configuration.
-- depends_on: core.identity_matches
-- key: github
create or replace table core.identities as
with configured as (
    select jira, github, 'configured' as source from config.identities
),

automatic as (
    select jira, github, reason as source from core.identity_matches
)

select * from configured
union all
select * from automatic
where lower(automatic.github) not in (select lower(github) from configured where github is not null)
;

comment on table core.identities is 'Jira account - GitHub login joins: configured, or matched automatically (source says which).';
