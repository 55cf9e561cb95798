-- One row per work item (Jira issue, pull request, GitHub issue) created by as_of, with its owning team
-- (configured project/repository team; Jira Team field; first assignee's team at first assignment;
-- author's or reporter's team at creation; unknown) and that team's calendar.
-- depends_on: staging.stg_jira__issues, staging.stg_github__pull_requests, staging.stg_github__issues, core.jira_changes, core.jira_changes_all, core.github_events, core.person_aliases, core.teams, core.memberships
-- key: item_id
create or replace table core.work_items as
with as_of as (
    select as_of from config.run
),

people as (
    select raw_id, person_id from core.person_aliases
),

team_names as (
    select team, lower(team) as lookup from core.teams
    union select team, lower(name) from core.teams
),

jira as (
    select
        issues.item_id, 'jira' as source, issues.issue_type as kind, issues.project_key as project,
        issues.issue_key as native_key, issues.issue_type, issues.summary as title, issues.created_at,
        reporter.person_id as author_id, assignee.person_id as current_assignee_id,
        coalesce(tn.team, issues.team_field_value) as team_field, issues.priority, issues.is_flagged
    from staging.stg_jira__issues as issues
    left join people as reporter on reporter.raw_id = 'jira:' || issues.reporter_user
    left join people as assignee on assignee.raw_id = 'jira:' || issues.assignee_user
    left join team_names as tn on tn.lookup = lower(issues.team_field_value)
),

jira_first_change as (
    select item_id, arg_min_null(from_person, ord) as initial_assignee
    from core.jira_changes_all
    where field_lower = 'assignee'
    group by item_id
),

jira_first_assigned as (
    select item_id, arg_min_null(to_person, ord) as assignee, min(created_at) as assigned_at
    from core.jira_changes
    where field_lower = 'assignee' and to_person is not null
    group by item_id
),

jira_first_assignment as (
    select
        jira.item_id,
        -- the assignee at creation: the first assignee change's from-value, else (no change) the current one
        case when fc.item_id is null then jira.current_assignee_id else fc.initial_assignee end
            as initial_assignee_id,
        case when fc.item_id is null then jira.current_assignee_id
            when fc.initial_assignee is not null then fc.initial_assignee else fa.assignee end as first_assignee,
        case when fc.item_id is null or fc.initial_assignee is not null then jira.created_at
            else fa.assigned_at end as first_assigned_at
    from jira
    left join jira_first_change as fc using (item_id)
    left join jira_first_assigned as fa using (item_id)
),

pulls as (
    select
        pr.item_id, 'github' as source, 'pull_request' as kind, pr.repository as project,
        pr.repository || '#' || pr.number as native_key, 'Pull Request' as issue_type, pr.title, pr.created_at,
        author.person_id as author_id, null as current_assignee_id, null as team_field, null as priority,
        false as is_flagged
    from staging.stg_github__pull_requests as pr
    left join people as author on author.raw_id = 'github:' || pr.author_login
),

gh_issues as (
    select
        gi.item_id, 'github' as source, 'issue' as kind, gi.repository as project,
        gi.repository || '#' || gi.number as native_key, 'Issue' as issue_type, gi.title, gi.created_at,
        author.person_id as author_id, null as current_assignee_id, null as team_field, null as priority,
        false as is_flagged
    from staging.stg_github__issues as gi
    left join people as author on author.raw_id = 'github:' || gi.author_login
),

gh_first_assignment as (
    select item_id, arg_min_null(assignee_id, ord) as first_assignee, min(event_at) as first_assigned_at
    from core.github_events
    where event = 'assigned' and assignee_id is not null
    group by item_id
),

unioned as (
    select jira.*, fa.initial_assignee_id, fa.first_assignee, fa.first_assigned_at
    from jira left join jira_first_assignment as fa using (item_id)
    union all by name
    select pulls.*, null as initial_assignee_id, null as first_assignee, null::timestamptz as first_assigned_at
    from pulls
    union all by name
    select gh_issues.*, null as initial_assignee_id, fa.first_assignee, fa.first_assigned_at
    from gh_issues left join gh_first_assignment as fa using (item_id)
),

teamed as (
    select
        unioned.*,
        coalesce(
            pt.team,
            unioned.team_field,
            nullif(case when unioned.first_assignee is not null
                then core.team_of(unioned.first_assignee, unioned.first_assigned_at, null) end, 'unknown'),
            nullif(core.team_of(unioned.author_id, unioned.created_at, null), 'unknown'),
            'unknown'
        ) as team
    from unioned
    -- GitHub names are case-insensitive: a configuration may spell a repository its own way
    left join config.project_teams as pt on pt.source = unioned.source and lower(pt.project) = lower(unioned.project)
)

select
    teamed.*,
    coalesce(teams.calendar, 'default') as calendar
from teamed
left join core.teams as teams using (team)
where teamed.created_at <= (select as_of from as_of)
