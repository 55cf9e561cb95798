-- GitHub timeline events up to as_of, in event order (time, then id), with canonical actor and target
-- ids, bot flags, and each review's state as submitted (a dismissed review keeps its original state).
-- Labels and assignees present at creation (current and never added, or first removed) appear as
-- `labeled` / `assigned` events at the creation instant with ord 0 and no actor.
-- depends_on: staging.stg_github__timeline_events, staging.stg_github__pull_requests, staging.stg_github__issues, core.person_aliases
-- key: item_id, ord, event, label, assignee_id
create or replace table core.github_events as
with items as (
    select item_id, 'pull_request' as kind, author_login, repository, number, created_at
    from staging.stg_github__pull_requests
    union all
    select item_id, 'issue', author_login, repository, number, created_at from staging.stg_github__issues
),

current_values as (
    select item_id, 'label' as value_type, unnest(labels) as value from staging.stg_github__pull_requests
    union all select item_id, 'label', unnest(labels) from staging.stg_github__issues
    union all select item_id, 'assignee', unnest(assignees) from staging.stg_github__issues
),

value_events as (
    select
        item_id,
        case when event in ('labeled', 'unlabeled') then 'label' else 'assignee' end as value_type,
        coalesce(label, assignee_login) as value,
        arg_min_null(event, (event_at, event_id)) as first_event
    from staging.stg_github__timeline_events
    where event in ('labeled', 'unlabeled', 'assigned', 'unassigned') and coalesce(label, assignee_login) is not null
    group by all
),

initially_present as (
    select item_id, value_type, value from value_events where first_event in ('unlabeled', 'unassigned')
    union
    select c.item_id, c.value_type, c.value
    from current_values as c
    anti join value_events as v using (item_id, value_type, value)
),

events as (
    -- numbered before the people lookups: the window then sorts logins, not the longer person ids
    select
        ev.*, items.kind, items.author_login,
        row_number() over (partition by ev.item_id order by ev.event_at, ev.event_id, ev.raw_id) as ord
    from staging.stg_github__timeline_events as ev
    join items using (item_id)
    -- one CASE, not a chain of conditions: DuckDB multiplies a default selectivity per condition, estimates a
    -- few dozen events, and would build the people lookups' hash tables on millions of events
    where case
        when ev.event_at is null or ev.event_at > (select as_of from config.run) then false
        else not list_contains(['committed', 'subscribed', 'mentioned', 'referenced', 'cross-referenced'], ev.event)
    end
),

dismissals as (
    -- a payload fetched after a dismissal says `dismissed`: its state before comes from the dismissal, even
    -- one after as_of (then the review was still what it was at as_of, and dismissed_at stays null)
    select
        item_id,
        dismissed_review_id,
        min(event_at) filter (where event_at <= (select as_of from config.run)) as dismissed_at,
        any_value(dismissed_state) as state
    from staging.stg_github__timeline_events
    where event = 'review_dismissed'
    group by all
),

people as (
    select raw_id, person_id, is_bot from core.person_aliases
),

timeline as (
    select
    events.item_id,
    events.kind,
    events.repository,
    events.number,
    events.event_id,
    events.event,
    events.event_at,
    events.ord,
    -- a deleted account (REST "user": null, a null GraphQL actor) is kept as the one person deleted:user
    coalesce(actor.person_id, case when events.actor_login is null and events.event in ('reviewed',
        'review_requested', 'review_request_removed', 'review_dismissed', 'labeled', 'unlabeled', 'merged',
        'closed', 'reopened', 'assigned', 'unassigned', 'ready_for_review', 'convert_to_draft')
        then 'deleted:user' end) as actor_id,
    coalesce(actor.is_bot, events.actor_login like '%[bot]', false) as actor_is_bot,
    author.person_id as author_id,
    events.actor_login = events.author_login or actor.person_id = author.person_id as actor_is_author,
    case
        when events.requested_team is not null
            then 'github-team:' || split_part(events.repository, '/', 1) || '/' || events.requested_team
        -- a request naming neither a reviewer nor a team: an account deleted since (GraphQL's null
        -- requestedReviewer; REST says ghost, which the aliases map to the same person)
        when events.event in ('review_requested', 'review_request_removed') and events.requested_reviewer is null
            then 'deleted:user'
        else reviewer.person_id
    end as requested_of,
    events.requested_team,
    case when events.event = 'reviewed' and events.review_state = 'dismissed'
        then coalesce(dismissals.state, 'dismissed') else events.review_state end as review_state,
    dismissals.dismissed_at,
    events.review_body,
    events.label,
    assignee.person_id as assignee_id,
    events.dismissed_review_id
from events
left join people as actor on actor.raw_id = 'github:' || events.actor_login
left join people as author on author.raw_id = 'github:' || events.author_login
left join people as reviewer on reviewer.raw_id = 'github:' || events.requested_reviewer
left join people as assignee on assignee.raw_id = 'github:' || events.assignee_login
left join dismissals
    on events.event = 'reviewed' and dismissals.item_id = events.item_id
    and dismissals.dismissed_review_id = events.event_id
),

synthetic as (
    select
        items.item_id, items.kind, items.repository, items.number, 0::bigint as event_id,
        case ip.value_type when 'label' then 'labeled' else 'assigned' end as event,
        items.created_at as event_at, 0::bigint as ord, null as actor_id, false as actor_is_bot,
        author.person_id as author_id, false as actor_is_author, null as requested_of, null as requested_team,
        null as review_state, null::timestamptz as dismissed_at, null as review_body,
        case when ip.value_type = 'label' then ip.value end as label,
        case when ip.value_type = 'assignee' then assignee.person_id end as assignee_id,
        null::bigint as dismissed_review_id
    from initially_present as ip
    join items using (item_id)
    left join people as author on author.raw_id = 'github:' || items.author_login
    left join people as assignee on assignee.raw_id = 'github:' || ip.value
    where items.created_at <= (select as_of from config.run)
)

select * from timeline
union all by name
select * from synthetic
