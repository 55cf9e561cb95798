-- One row per visit of a pull request or GitHub issue to a flow state (GitHub items have no statuses: the
-- status is the flow state), before core.status_intervals sequences and times them: the state after the
-- last event of each instant, per docs/metrics-rulings.md; consecutive equal states merge.
-- depends_on: core.work_items, core.github_events, core.review_requests, staging.stg_github__pull_requests
-- key: item_id, entered_ord
create or replace table core.github_visits as
with items as (
    -- what the states need of the item travels with each point: no join of millions of points later
    select wi.item_id, wi.kind, wi.created_at, wi.author_id, coalesce(pr.is_draft, false) as is_draft
    from core.work_items as wi
    left join staging.stg_github__pull_requests as pr using (item_id)
    where wi.source = 'github'
),

gh_points_all as (
    select item_id, kind, author_id, is_draft, 0 as ord, created_at as point_at, null::varchar as actor_id,
        null::varchar as event
    from items
    union all
    select ev.item_id, items.kind, items.author_id, items.is_draft, ev.ord, ev.event_at, ev.actor_id, ev.event
    from core.github_events as ev
    join items using (item_id)
),

gh_points as (
    -- the state at an instant is the state after its last event; what the events so far say is carried by
    -- one pass in event order (the last close or reopen, the last draft toggle, a merge)
    select * exclude (event)
    from (
        select
            *,
            point_at is distinct from lead(point_at) over w as is_last_of_instant,
            last_value(case when event in ('closed', 'reopened') then event end ignore nulls) over w_so_far
                as last_toggle,
            last_value(case when event in ('ready_for_review', 'convert_to_draft') then event end ignore nulls)
                over w_so_far as last_draft_toggle,
            bool_or(event = 'merged') over w_so_far as merged_so_far
        from gh_points_all
        window w as (partition by item_id order by ord),
            w_so_far as (partition by item_id order by ord rows between unbounded preceding and current row)
    )
    where is_last_of_instant
),

events as (
    select * from core.github_events
),

-- The other state inputs at each point: joins against the few open requests / effective reviews / labels /
-- assignments of the item (not every event of it).
first_draft_toggle as (
    select item_id, arg_min_null(event, ord) as event
    from events
    where event in ('ready_for_review', 'convert_to_draft')
    group by item_id
),

pr_base as (
    select item_id, ord, point_at, actor_id, author_id, is_draft, last_toggle, last_draft_toggle, merged_so_far
    from gh_points
    where kind = 'pull_request'
),

pr_open_request as (
    select p.item_id, p.ord, arg_max_null(r.requested_of, r.request_ord) as open_request_of
    from pr_base as p
    join core.review_requests as r on r.item_id = p.item_id
        and r.request_ord <= p.ord and (r.end_ord is null or r.end_ord > p.ord)
    group by p.item_id, p.ord
),

effective_reviews as (
    select item_id, ord, review_state, dismissed_at from events
    where event = 'reviewed' and not actor_is_bot and review_state in ('approved', 'changes_requested')
),

pr_latest_review as (
    select p.item_id, p.ord, arg_max_null(e.review_state, e.ord) as latest_review
    from pr_base as p
    join effective_reviews as e on e.item_id = p.item_id
        and e.ord <= p.ord and (e.dismissed_at is null or e.dismissed_at > p.point_at)
    group by p.item_id, p.ord
),

pr_points as (
    select
        p.item_id, p.ord, p.point_at, p.actor_id, p.author_id,
        coalesce(p.merged_so_far, false) as is_merged,
        coalesce(p.last_toggle = 'closed', false) as is_closed,
        coalesce(p.last_draft_toggle = 'convert_to_draft', fd.event = 'ready_for_review', p.is_draft) as is_draft,
        orq.open_request_of,
        lr.latest_review
    from pr_base as p
    left join first_draft_toggle as fd on fd.item_id = p.item_id
    left join pr_open_request as orq on orq.item_id = p.item_id and orq.ord = p.ord
    left join pr_latest_review as lr on lr.item_id = p.item_id and lr.ord = p.ord
),

pr_states as (
    select
        item_id, ord, point_at, actor_id,
        case
            when is_merged or is_closed then 'done' when is_draft then 'active'
            when open_request_of is not null then 'approval'
            when latest_review = 'approved' then 'queue'
            else 'active'
        end as state,
        case when open_request_of is not null and not (is_merged or is_closed or is_draft) then open_request_of
            else author_id end as owner_id
    from pr_points
),

issue_label_events as (
    select e.item_id, e.ord, e.event, e.label, gl.state
    from events as e
    join config.github_labels as gl on lower(gl.label) = lower(e.label)
    where e.kind = 'issue' and e.event in ('labeled', 'unlabeled')
),

issue_base as (
    select item_id, ord, point_at, actor_id, last_toggle from gh_points where kind = 'issue'
),

label_spans as (
    -- a label applies from its `labeled` event until the next `unlabeled` of the same label
    select l.item_id, l.ord, l.state, min(u.ord) as end_ord
    from issue_label_events as l
    left join issue_label_events as u on u.item_id = l.item_id and u.label = l.label and u.event = 'unlabeled'
        and u.ord > l.ord
    where l.event = 'labeled'
    group by l.item_id, l.ord, l.state, l.label
),

assign_spans as (
    select a.item_id, a.ord, a.assignee_id, min(u.ord) as end_ord
    from events as a
    left join events as u on u.item_id = a.item_id and u.event = 'unassigned' and u.assignee_id = a.assignee_id
        and u.ord > a.ord
    where a.event = 'assigned' and a.kind = 'issue'
    group by a.item_id, a.ord, a.assignee_id
),

issue_label_state as (
    select p.item_id, p.ord, arg_max_null(l.state, l.ord) as label_state
    from issue_base as p
    join label_spans as l on l.item_id = p.item_id and l.ord <= p.ord and (l.end_ord is null or l.end_ord > p.ord)
    group by p.item_id, p.ord
),

issue_assignee as (
    select p.item_id, p.ord, arg_max_null(a.assignee_id, a.ord) as assignee_id
    from issue_base as p
    join assign_spans as a on a.item_id = p.item_id and a.ord <= p.ord and (a.end_ord is null or a.end_ord > p.ord)
    group by p.item_id, p.ord
),

issue_points as (
    select
        p.item_id, p.ord, p.point_at, p.actor_id,
        coalesce(p.last_toggle = 'closed', false) as is_closed,
        ls.label_state,
        ia.assignee_id
    from issue_base as p
    left join issue_label_state as ls on ls.item_id = p.item_id and ls.ord = p.ord
    left join issue_assignee as ia on ia.item_id = p.item_id and ia.ord = p.ord
),

issue_states as (
    select
        item_id, ord, point_at, actor_id,
        case when is_closed then 'done' when label_state is not null then label_state
            when assignee_id is not null then 'active' else 'backlog' end as state,
        assignee_id as owner_id
    from issue_points
),

gh_states as (
    select item_id, ord, point_at, actor_id, state, owner_id from pr_states
    union all
    select item_id, ord, point_at, actor_id, state, owner_id from issue_states
)

-- consecutive equal states merge: a visit starts at each point whose state differs from the one before
select item_id, ord as entered_ord, point_at as entered_at, state as status, state, owner_id, actor_id as entered_by
from gh_states
qualify state is distinct from lag(state) over (partition by item_id order by ord)
