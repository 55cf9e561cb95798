-- One row per issue / pull request timeline event. A `reviewed` event's time is its submitted_at;
-- `state` is lowercased. Each payload is parsed once.
-- depends_on: raw.github__timeline_events
-- key: raw_id
create or replace table staging.stg_github__timeline_events as
with superseded as (
    -- older copies of an event (its payload changes, e.g. when a review is dismissed), found on the narrow
    -- keys so that only the payloads kept are parsed; few events have more than one copy
    select id, updated
    from raw.github__timeline_events
    semi join (select id from raw.github__timeline_events group by id having count(*) > 1) using (id)
    qualify row_number() over (partition by id order by loaded_at desc, updated desc) > 1
),

events as (
    select
        timeline.id as raw_id,
        from_json(timeline.payload, '{
            "repository": "VARCHAR", "issue_number": "INTEGER",
            "event": {
                "id": "VARCHAR", "event": "VARCHAR", "actor": {"login": "VARCHAR"}, "user": {"login": "VARCHAR"},
                "created_at": "VARCHAR", "submitted_at": "VARCHAR", "requested_reviewer": {"login": "VARCHAR"},
                "requested_team": {"slug": "VARCHAR"}, "state": "VARCHAR", "body": "VARCHAR",
                "label": {"name": "VARCHAR"}, "assignee": {"login": "VARCHAR"},
                "dismissed_review": {"review_id": "VARCHAR", "state": "VARCHAR"},
                "committer": {"date": "VARCHAR"}, "author": {"date": "VARCHAR"}
            }
        }') as p
    from raw.github__timeline_events as timeline
    anti join superseded using (id, updated)
)

select
    'github:' || p.repository || '#' || p.issue_number as item_id,
    p.repository as repository,
    p.issue_number as number,
    coalesce(try_cast(p.event.id as bigint), 0) as event_id,
    raw_id,
    p.event.event as event,
    coalesce(p.event.actor.login, p.event.user.login) as actor_login,
    coalesce(try_cast(p.event.created_at as timestamptz), try_cast(p.event.submitted_at as timestamptz),
             try_cast(p.event.committer.date as timestamptz), try_cast(p.event.author.date as timestamptz))
        as event_at,
    p.event.requested_reviewer.login as requested_reviewer,
    p.event.requested_team.slug as requested_team,
    lower(p.event.state) as review_state,
    p.event.body as review_body,
    p.event.label.name as label,
    p.event.assignee.login as assignee_login,
    try_cast(p.event.dismissed_review.review_id as bigint) as dismissed_review_id,
    lower(p.event.dismissed_review.state) as dismissed_state
from events
