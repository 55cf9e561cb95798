-- GitHub review requests (non-bot actor), one per requested user or team, each ended by the first of:
-- a review by the requested user (any non-bot non-author for a team) submitted at or after the request,
-- the request's removal, the merge, or a close without merge. Open ones have no end.
-- depends_on: core.github_events, core.work_items
-- key: item_id, request_ord, requested_of
create or replace table core.review_requests as
with events as not materialized (
    -- read where used: materialised for its several readers, every column of millions of events would be copied
    select * from core.github_events where kind = 'pull_request'
),

requests as (
    select item_id, ord, event_id, event_at as requested_at, actor_id as requested_by, requested_of,
        requested_team, author_id
    from events
    where event = 'review_requested' and not actor_is_bot and requested_of is not null
),

reviews as (
    select item_id, ord, event_at, actor_id, review_state, review_body
    from events
    where event = 'reviewed' and not actor_is_bot and not coalesce(actor_is_author, false)
        and review_state in ('approved', 'changes_requested', 'commented')
),

merges as (
    select item_id, ord, event_at, actor_id from events where event = 'merged'
),

first_merges as (
    select item_id, min(event_at) as merged_at from merges group by item_id
),

closes as (
    -- closed without a merge before
    select c.item_id, c.ord, c.event_at, c.actor_id
    from events as c
    left join first_merges as m on m.item_id = c.item_id
    where c.event = 'closed' and (m.merged_at is null or m.merged_at > c.event_at)
),

candidates as (
    select r.item_id, r.ord as request_ord, v.event_at as ended_at, v.ord as end_ord, v.actor_id as decided_by,
        v.review_state as outcome, v.review_body as body
    from requests as r
    join reviews as v
        on v.item_id = r.item_id and v.event_at >= r.requested_at
        and (r.requested_team is not null or v.actor_id = r.requested_of)
    union all
    select r.item_id, r.ord, x.event_at, x.ord, x.actor_id, 'withdrawn', null
    from requests as r
    join events as x
        on x.item_id = r.item_id and x.event = 'review_request_removed' and not x.actor_is_bot
        and x.ord > r.ord and x.requested_of = r.requested_of
    union all
    select r.item_id, r.ord, m.event_at, m.ord, m.actor_id, 'merged_without_review', null
    from requests as r
    join merges as m on m.item_id = r.item_id and m.ord > r.ord
    union all
    select r.item_id, r.ord, c.event_at, c.ord, c.actor_id, 'closed_without_review', null
    from requests as r
    join closes as c on c.item_id = r.item_id and c.ord > r.ord
),

first_end as (
    select item_id, request_ord,
        arg_min_null(ended_at, (ended_at, end_ord)) as decided_at,
        arg_min_null(end_ord, (ended_at, end_ord)) as end_ord,
        arg_min_null(decided_by, (ended_at, end_ord)) as decided_by,
        arg_min_null(outcome, (ended_at, end_ord)) as outcome,
        arg_min_null(body, (ended_at, end_ord)) as body
    from candidates
    group by all
)

select
    requests.item_id,
    requests.ord as request_ord,
    requests.event_id,
    requests.requested_at,
    requests.requested_by,
    requests.requested_of,
    requests.requested_team is not null as is_team_request,
    requests.author_id,
    first_end.decided_at,
    first_end.end_ord,
    first_end.decided_by,
    first_end.outcome,
    first_end.body as review_body
from requests
left join first_end on first_end.item_id = requests.item_id and first_end.request_ord = requests.ord
where requests.item_id in (select item_id from core.work_items)
