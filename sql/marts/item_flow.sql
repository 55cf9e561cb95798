-- depends_on: marts.item_links, marts.dependency_waits, core.work_items, core.status_intervals, core.ownership_intervals, core.blocked_pieces, core.github_events, staging.stg_github__pull_requests, marts.handoffs, marts.approval_waits, marts.decision_waits, marts.reversals, marts.wait_intervals, core.calendar_intervals, core.calendar_hours
-- key: item_id
create or replace table marts.item_flow as
with as_of as (
    select as_of from config.run
),

items as (
    select * from core.work_items
),

visits as not materialized (
    -- read where used: materialised once for its several readers, all of its 10 M rows would be copied
    select item_id, visit_no, state, status, entered_at, exited_at from core.status_intervals
),

current_state as (
    select item_id, state as current_state, status as current_status
    from visits
    qualify row_number() over (partition by item_id order by visit_no desc) = 1
),

visit_marks as (
    select
        item_id,
        min(entered_at) filter (where state <> 'backlog') as started_at,
        coalesce(max(visit_no) filter (where state <> 'done'), 0) as last_not_done_visit
    from visits
    group by item_id
),

done_runs as (
    -- the final run of done visits: finished_at is its start
    select v.item_id, min(v.entered_at) as finished_at
    from visits as v
    join visit_marks as m using (item_id)
    where v.state = 'done' and v.visit_no > m.last_not_done_visit
    group by v.item_id
),

cycle as (
    select
        items.item_id,
        m.started_at,
        case when cs.current_state = 'done' then dr.finished_at end as finished_at,
        cs.current_state, cs.current_status
    from items
    left join visit_marks as m using (item_id)
    left join current_state as cs using (item_id)
    left join done_runs as dr using (item_id)
),

window_ as (
    select item_id, started_at, coalesce(finished_at, (select as_of from as_of)) as ends_at
    from cycle
    where started_at is not null
),

blocked_union as (
    -- overlapping blocked pieces merge into one (islands: a new one starts past every end before it)
    select item_id, min(started_at) as started_at, max(ended_at) as ended_at
    from (
        select *, sum(is_new) over (partition by item_id order by started_at, ended_at) as island
        from (
            select *, case when started_at <= max(ended_at) over (
                partition by item_id order by started_at, ended_at
                rows between unbounded preceding and 1 preceding
            ) then 0 else 1 end as is_new
            from core.blocked_pieces
        )
    )
    group by item_id, island
),

clipped_visits as (
    -- the active and the waiting visits, cut to the cycle
    select
        v.item_id, v.state = 'active' as is_active,
        greatest(v.entered_at, w.started_at) as started_at, least(v.exited_at, w.ends_at) as ended_at
    from visits as v
    join window_ as w using (item_id)
    where v.state in ('active', 'queue', 'approval', 'decision', 'blocked') and v.entered_at < w.ends_at
        and v.exited_at > w.started_at
),

blocked_clipped as (
    select b.item_id, greatest(b.started_at, w.started_at) as started_at, least(b.ended_at, w.ends_at) as ended_at
    from blocked_union as b
    join window_ as w using (item_id)
    where b.started_at < w.ends_at and b.ended_at > w.started_at
),

parts as (
    -- visits do not overlap one another, nor do the merged blocked intervals: pairwise overlaps add up
    select item_id, case when is_active then 'active' else 'waiting_visit' end as part,
        epoch(ended_at) - epoch(started_at) as seconds
    from clipped_visits
    union all
    select item_id, 'blocked', epoch(ended_at) - epoch(started_at) from blocked_clipped
    union all
    select a.item_id, case when a.is_active then 'active_blocked' else 'waiting_blocked' end,
        epoch(least(a.ended_at, b.ended_at)) - epoch(greatest(a.started_at, b.started_at))
    from clipped_visits as a
    join blocked_clipped as b on b.item_id = a.item_id and b.started_at < a.ended_at and b.ended_at > a.started_at
),

flow_times as (
    -- active: active visits less the blocked time in them; waiting: the union of waiting visits and blocked
    -- pieces (METRICS.md), i.e. both sums less their overlaps
    select
        item_id,
        sum(seconds) filter (where part = 'active') - coalesce(sum(seconds) filter (where part = 'active_blocked'), 0)
            as active_s,
        coalesce(sum(seconds) filter (where part in ('waiting_visit', 'blocked')), 0)
            - coalesce(sum(seconds) filter (where part = 'waiting_blocked'), 0) as waiting_s,
        sum(seconds) filter (where part = 'blocked') as blocked_s
    from parts
    group by item_id
),

handoff_counts as (
    select item_id, count(*) as handoffs, count(*) filter (where is_team_handoff) as team_handoffs,
        count(*) filter (where is_bounce) as bounces
    from marts.handoffs
    group by item_id
),

owners as (
    select item_id, owner_id from core.ownership_intervals where owner_id is not null
    union all select item_id, from_owner from marts.handoffs
    union all select item_id, to_owner from marts.handoffs
),

owner_teams as (
    select item_id, from_team as team from marts.handoffs
    union all select item_id, to_team from marts.handoffs
),

owner_counts as (
    select item_id, count(distinct owner_id) as distinct_owners from owners group by item_id
),

team_counts as (
    select item_id, count(distinct team) as distinct_teams from owner_teams group by item_id
),

first_rejections as (
    select item_id, min(decided_at) as rejected_at
    from marts.approval_waits
    where outcome in ('rejected', 'changes_requested')
    group by item_id
),

approval_stats as (
    select
        w.item_id,
        count(*) as approval_requests,
        -- a request after a rejection or a change request: another round
        count(*) filter (where fr.rejected_at < w.requested_at) as approval_rounds,
        sum(w.calendar_s) as approval_wait_s,
        sum(w.business_s) as approval_wait_business_s,
        count(*) filter (where w.outcome = 'approved' and w.calendar_s < 300 and coalesce(w.review_body, '') = '')
            as fast_approvals
    from marts.approval_waits as w
    left join first_rejections as fr using (item_id)
    group by w.item_id
),

decision_stats as (
    select item_id, count(*) as decision_requests, sum(calendar_s) as decision_wait_s,
        sum(business_s) as decision_wait_business_s
    from marts.decision_waits
    group by item_id
),

reversal_counts as (
    select item_id, count(*) as reversals from marts.reversals group by item_id
),

unowned as (
    select item_id, sum(calendar_s) as unowned_active_s from marts.wait_intervals where cause = 'unowned'
    group by item_id
),

draft_events as (
    select
        item_id,
        arg_min_null(event, ord) filter (where event in ('ready_for_review', 'convert_to_draft')) as first_toggle,
        min(event_at) filter (where event = 'ready_for_review') as first_ready_at
    from core.github_events
    where event in ('ready_for_review', 'convert_to_draft')
    group by item_id
),

pr_ready as (
    select
        pr.item_id,
        case when coalesce(d.first_toggle = 'ready_for_review', pr.is_draft) then d.first_ready_at
            else pr.created_at end as ready_at
    from staging.stg_github__pull_requests as pr
    left join draft_events as d using (item_id)
),

pr_reviews as (
    select
        r.item_id,
        min(e.event_at) as first_review_at,
        min(e.event_at) filter (where e.review_state = 'approved') as first_approval_at,
        r.ready_at
    from pr_ready as r
    left join core.github_events as e
        on e.item_id = r.item_id and e.event = 'reviewed' and not e.actor_is_bot
        and not coalesce(e.actor_is_author, false) and e.event_at >= r.ready_at
    group by r.item_id, r.ready_at
),

pull_links as (
    -- the pull requests whose review waits count for an item: those implementing a Jira issue; a pull request's own
    select item_id, linked_item_id as pull_id from marts.item_links where link_kind = 'implemented_by'
    union all
    select item_id, item_id from items where kind = 'pull_request'
),

link_counts as (
    select item_id, count(*) as linked_pull_requests
    from marts.item_links
    where link_kind = 'implemented_by'
    group by item_id
),

first_linked_pull as (
    -- the first pull request (by creation) implementing a Jira issue
    select l.item_id, arg_min_null(pr.ready_at, (p.created_at, p.item_id)) as ready_at,
        arg_min_null(pr.first_review_at, (p.created_at, p.item_id)) as first_review_at
    from marts.item_links as l
    join items as p on p.item_id = l.linked_item_id
    join pr_reviews as pr on pr.item_id = l.linked_item_id
    where l.link_kind = 'implemented_by'
    group by l.item_id
),

review_pieces as (
    -- review waits of the item's pull requests ('review'), and those with its own approval waits ('chain'), cut
    -- to the item's cycle
    select pl.item_id, greatest(aw.requested_at, w.started_at) as started_at,
        least(coalesce(aw.decided_at, (select as_of from as_of)), w.ends_at) as ended_at
    from pull_links as pl
    join window_ as w using (item_id)
    join marts.approval_waits as aw
        on aw.item_id = pl.pull_id and aw.source_kind = 'github_review'
        and aw.requested_at < w.ends_at and coalesce(aw.decided_at, (select as_of from as_of)) > w.started_at
),

approval_pieces as (
    select 'review' as measure, * from review_pieces
    union all
    select 'chain', * from review_pieces
    union all
    select 'chain', aw.item_id, greatest(aw.requested_at, w.started_at),
        least(coalesce(aw.decided_at, (select as_of from as_of)), w.ends_at)
    from marts.approval_waits as aw
    join window_ as w using (item_id)
    where aw.source_kind <> 'github_review'
        and aw.requested_at < w.ends_at and coalesce(aw.decided_at, (select as_of from as_of)) > w.started_at
),

approval_union as (
    -- union, never the sum: overlapping waits (two pull requests, a review and a status approval) count once
    select measure, item_id, min(started_at) as started_at, max(ended_at) as ended_at
    from (
        select *, sum(is_new) over (partition by measure, item_id order by started_at, ended_at) as island
        from (
            select *, case when started_at <= max(ended_at) over (
                partition by measure, item_id order by started_at, ended_at
                rows between unbounded preceding and 1 preceding
            ) then 0 else 1 end as is_new
            from approval_pieces
        )
    )
    group by measure, item_id, island
),

review_stats as (
    select
        r.item_id,
        sum(epoch(r.ended_at) - epoch(r.started_at)) filter (where r.measure = 'review') as review_wait_s,
        sum(core.worked(e, r.ended_at) - core.worked(s, r.started_at)) filter (where r.measure = 'review')
            as review_wait_business_s,
        sum(epoch(r.ended_at) - epoch(r.started_at)) filter (where r.measure = 'chain') as approval_chain_wait_s,
        sum(core.worked(e, r.ended_at) - core.worked(s, r.started_at)) filter (where r.measure = 'chain')
            as approval_chain_wait_business_s
    from approval_union as r
    join items using (item_id)
    left join core.calendar_hours as s on s.calendar = items.calendar and s.hour_no = core.hour_no(r.started_at)
    left join core.calendar_hours as e on e.calendar = items.calendar and e.hour_no = core.hour_no(r.ended_at)
    group by r.item_id
),

pull_approvals as (
    -- approving reviews by someone other than the author or a bot: one step per pull request and approver
    select distinct item_id, actor_id
    from core.github_events
    where event = 'reviewed' and review_state = 'approved' and not actor_is_bot
        and not coalesce(actor_is_author, false) and actor_id is not null
),

chain_steps as (
    -- the approval steps an item passed, each once: its approved status-approval visits and JSM approvals
    -- (approval_waits counts a JSM approval overlapping a visit once), and the approvals of its pull requests
    select item_id, concat_ws(':', source_kind, event_ord, requested_of) as step, decided_by as approvers
    from marts.approval_waits
    where source_kind <> 'github_review' and outcome = 'approved'
    union all
    select pl.item_id, pl.pull_id || ':' || pa.actor_id, pa.actor_id
    from pull_links as pl
    join pull_approvals as pa on pa.item_id = pl.pull_id
),

chain_stats as (
    select item_id, count(distinct step) as approval_chain_length,
        count(distinct trim(approver)) filter (where approver is not null) as approvers
    from chain_steps, unnest(coalesce(string_split(approvers, ','), [null])) as a(approver)
    group by item_id
),

undeclared as (
    -- undeclared dependencies (disjoint per item: one holder and one status at a time), cut to the cycle
    select d.item_id, sum(epoch(least(d.ended_at, w.ends_at)) - epoch(greatest(d.started_at, w.started_at)))
        as undeclared_dependency_s
    from marts.dependency_waits as d
    join window_ as w using (item_id)
    where not d.declared and d.started_at < w.ends_at and d.ended_at > w.started_at
    group by d.item_id
),

joined as (
    select
        items.item_id, items.source, items.kind, items.project, items.team, items.title, items.created_at,
        cycle.started_at, cycle.finished_at, cycle.current_state, cycle.current_status,
        case when cycle.started_at is not null
            then epoch(coalesce(cycle.finished_at, (select as_of from as_of))) - epoch(cycle.started_at) end
            as cycle_s,
        greatest(coalesce(ft.active_s, 0), 0) as active_s,
        coalesce(ft.waiting_s, 0) as waiting_s,
        coalesce(hc.handoffs, 0) as handoffs,
        coalesce(hc.team_handoffs, 0) as team_handoffs,
        coalesce(hc.bounces, 0) as bounces,
        coalesce(oc.distinct_owners, 0) as distinct_owners,
        coalesce(tc.distinct_teams, 0) as distinct_teams,
        coalesce(un.unowned_active_s, 0) as unowned_active_s,
        coalesce(ap.approval_requests, 0) as approval_requests,
        coalesce(ap.approval_rounds, 0) as approval_rounds,
        coalesce(ap.approval_wait_s, 0) as approval_wait_s,
        coalesce(ap.approval_wait_business_s, 0) as approval_wait_business_s,
        coalesce(ap.fast_approvals, 0) as fast_approvals,
        coalesce(ds.decision_requests, 0) as decision_requests,
        coalesce(ds.decision_wait_s, 0) as decision_wait_s,
        coalesce(ds.decision_wait_business_s, 0) as decision_wait_business_s,
        coalesce(ft.blocked_s, 0) as blocked_s,
        coalesce(rc.reversals, 0) as reversals,
        case when coalesce(cycle.current_state, '') <> 'done'
            then epoch((select as_of from as_of)) - epoch(items.created_at) end as age_s,
        epoch(coalesce(pr.first_review_at, flp.first_review_at)) - epoch(coalesce(pr.ready_at, flp.ready_at))
            as time_to_first_review_s,
        epoch(pr.first_approval_at) - epoch(pr.ready_at) as time_to_approval_s,
        coalesce(lc.linked_pull_requests, 0) as linked_pull_requests,
        coalesce(rs.review_wait_s, 0) as review_wait_s,
        coalesce(rs.review_wait_business_s, 0) as review_wait_business_s,
        coalesce(ud.undeclared_dependency_s, 0) as undeclared_dependency_s,
        coalesce(cs.approval_chain_length, 0) as approval_chain_length,
        coalesce(cs.approvers, 0) as approvers,
        coalesce(rs.approval_chain_wait_s, 0) as approval_chain_wait_s,
        coalesce(rs.approval_chain_wait_business_s, 0) as approval_chain_wait_business_s,
        items.calendar
    from items
    left join cycle using (item_id)
    left join flow_times as ft using (item_id)
    left join handoff_counts as hc using (item_id)
    left join approval_stats as ap using (item_id)
    left join decision_stats as ds using (item_id)
    left join reversal_counts as rc using (item_id)
    left join unowned as un using (item_id)
    left join pr_reviews as pr using (item_id)
    left join owner_counts as oc using (item_id)
    left join team_counts as tc using (item_id)
    left join link_counts as lc using (item_id)
    left join first_linked_pull as flp using (item_id)
    left join review_stats as rs using (item_id)
    left join undeclared as ud using (item_id)
    left join chain_stats as cs using (item_id)
)

select
    joined.* exclude (calendar),
    case when joined.active_s + joined.waiting_s > 0
        then joined.active_s / (joined.active_s + joined.waiting_s) end as flow_efficiency,
    case when joined.started_at is not null then
        core.worked(e, coalesce(joined.finished_at, (select as_of from as_of)))
        - core.worked(s, joined.started_at) end as cycle_business_s
from joined
left join core.calendar_hours as s
    on s.calendar = joined.calendar and s.hour_no = core.hour_no(joined.started_at)
left join core.calendar_hours as e
    on e.calendar = joined.calendar and e.hour_no = core.hour_no(coalesce(joined.finished_at, (select as_of from as_of)))
;

comment on table marts.item_flow is 'One row per work item: cycle, active and waiting time, handoffs, approvals, decisions, blocked time and reversals.';
comment on column marts.item_flow.item_id is 'jira:<issue key> or github:<owner>/<repo>#<number>.';
comment on column marts.item_flow.source is 'jira or github.';
comment on column marts.item_flow.kind is 'Jira issue type (Story, Bug, ...), pull_request or issue (GitHub).';
comment on column marts.item_flow.project is 'Jira project key or GitHub owner/repo.';
comment on column marts.item_flow.team is 'Owning team (configured project/repository team, Team field, first assignee, author/reporter, unknown).';
comment on column marts.item_flow.title is 'Summary or title.';
comment on column marts.item_flow.created_at is 'Creation time (UTC).';
comment on column marts.item_flow.started_at is 'First entry into a state other than backlog.';
comment on column marts.item_flow.finished_at is 'Last entry into done, if the item is done now.';
comment on column marts.item_flow.current_state is 'Flow state at as_of.';
comment on column marts.item_flow.current_status is 'Status (Jira) or PR/issue status at as_of.';
comment on column marts.item_flow.cycle_s is 'finished_at - started_at, or as_of - started_at while open (seconds).';
comment on column marts.item_flow.active_s is 'Seconds in active within the cycle, minus time blocked or flagged.';
comment on column marts.item_flow.waiting_s is 'Seconds within the cycle in queue, approval, decision, blocked, flagged or dependency-blocked (union).';
comment on column marts.item_flow.handoffs is 'Number of handoffs (marts.handoffs).';
comment on column marts.item_flow.team_handoffs is 'Handoffs between different teams.';
comment on column marts.item_flow.bounces is 'Handoffs back to an earlier owner.';
comment on column marts.item_flow.distinct_owners is 'Distinct owners the item had.';
comment on column marts.item_flow.distinct_teams is 'Distinct teams among handoff owners.';
comment on column marts.item_flow.unowned_active_s is 'Seconds in a non-backlog, non-done state with no owner.';
comment on column marts.item_flow.approval_requests is 'Number of approval requests.';
comment on column marts.item_flow.approval_rounds is 'Approval requests made after a rejection or changes requested.';
comment on column marts.item_flow.approval_wait_s is 'Sum of approval waits (calendar seconds).';
comment on column marts.item_flow.approval_wait_business_s is 'Sum of approval waits (business seconds).';
comment on column marts.item_flow.fast_approvals is 'Approvals in under 5 minutes with no review body (rubber stamps).';
comment on column marts.item_flow.decision_requests is 'Number of decision waits.';
comment on column marts.item_flow.decision_wait_s is 'Sum of decision waits (calendar seconds).';
comment on column marts.item_flow.decision_wait_business_s is 'Sum of decision waits (business seconds).';
comment on column marts.item_flow.blocked_s is 'Length of the union of blocked-status, flag and dependency pieces within the cycle (seconds).';
comment on column marts.item_flow.reversals is 'Number of reversals (marts.reversals).';
comment on column marts.item_flow.age_s is 'as_of - created_at for items not done.';
comment on column marts.item_flow.time_to_first_review_s is 'Pull requests: first ready-for-review moment to first review by anyone but the author or a bot; Jira issues: that of the first pull request implementing it (marts.item_links).';
comment on column marts.item_flow.linked_pull_requests is 'Jira issues: number of pull requests implementing it (marts.item_links).';
comment on column marts.item_flow.review_wait_s is 'Union (never the sum) of the review waits of the item''s pull requests (its own, or those implementing the Jira issue) within its cycle (calendar seconds).';
comment on column marts.item_flow.undeclared_dependency_s is 'Seconds within the cycle the item waited while handed to another team''s member, no dependency declared (marts.dependency_waits).';
comment on column marts.item_flow.approval_chain_length is 'Approval steps passed, each once: approved approval-state visits and JSM approvals, and approvals (one per pull request and approver) of its pull requests.';
comment on column marts.item_flow.approvers is 'Distinct people who gave those approvals.';
comment on column marts.item_flow.approval_chain_wait_s is 'Union of the item''s own approval waits and its pull requests'' review waits within its cycle (calendar seconds).';
comment on column marts.item_flow.approval_chain_wait_business_s is 'approval_chain_wait_s in working seconds.';
comment on column marts.item_flow.review_wait_business_s is 'review_wait_s in working seconds of the item team''s calendar.';
comment on column marts.item_flow.time_to_approval_s is 'Pull requests: first ready-for-review moment to first approval.';
comment on column marts.item_flow.flow_efficiency is 'active_s / (active_s + waiting_s).';
comment on column marts.item_flow.cycle_business_s is 'The cycle in working seconds of the team calendar.';
