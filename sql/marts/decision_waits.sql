-- depends_on: core.work_items, core.status_intervals, core.github_events, core.calendar_intervals, core.calendar_hours, core.teams, core.memberships
-- key: item_id, source_kind, event_ord
create or replace table marts.decision_waits as
with as_of as (
    select as_of from config.run
),

items as (
    select item_id, source, team, team_field, calendar from core.work_items
),

jira_visits as (
    select
        si.item_id, 'jira_status' as source_kind, si.entered_at as requested_at,
        case when not si.is_open then si.exited_at end as decided_at,
        case when not si.is_open then si.exited_by end as decided_by,
        case when not si.is_open then 'decided' end as outcome,
        si.owner_id as waited_on, si.entered_ord as event_ord
    from core.status_intervals as si
    join items using (item_id)
    where si.state = 'decision' and items.source = 'jira'
),

decision_labels as (
    select lower(label) as label from config.decision_labels
    union
    select lower(label) from config.github_labels where state = 'decision'
),

label_events as (
    select ev.*
    from core.github_events as ev
    where ev.event in ('labeled', 'unlabeled') and not ev.actor_is_bot
        and lower(ev.label) in (select label from decision_labels)
),

ends as (
    select item_id, ord, event_at, actor_id, lower(label) as label, 'decided' as outcome
    from label_events where event = 'unlabeled'
    union all
    select item_id, ord, event_at, actor_id, null, 'closed'
    from core.github_events where event in ('closed', 'merged')
),

label_waits as (
    select
        a.item_id, a.ord, a.event_at as requested_at, lower(a.label) as label,
        (select arg_min_null(struct_pack(event_at := e.event_at, actor_id := e.actor_id, outcome := e.outcome,
            ord := e.ord), e.ord) from ends as e
         where e.item_id = a.item_id and e.ord > a.ord and (e.label is null or e.label = lower(a.label))) as ended
    from label_events as a
    where a.event = 'labeled'
),

github_labels as (
    select
        item_id, 'github_label' as source_kind, requested_at, ended.event_at as decided_at,
        ended.actor_id as decided_by, ended.outcome as outcome, null as waited_on,
        ord as event_ord
    from label_waits
    -- a label added again while already on: one wait
    qualify row_number() over (partition by item_id, label, coalesce(ended.ord, -1) order by ord) = 1
),

unioned as (
    select * from jira_visits
    union all select * from github_labels
),

timed as (
    select
        unioned.*,
        items.team as owner_team,
        core.team_of(unioned.decided_by, unioned.decided_at, items.team_field) as decided_by_team,
        unioned.decided_at is null as is_open,
        coalesce(unioned.decided_at, (select as_of from as_of)) as ended_at,
        items.calendar
    from unioned
    join items using (item_id)
)

select
    timed.item_id, timed.requested_at, timed.decided_at, timed.decided_by, timed.decided_by_team,
    timed.owner_team,
    coalesce(timed.decided_by_team <> 'unknown' and timed.owner_team <> 'unknown'
        and timed.decided_by_team <> timed.owner_team, false) as is_remote_decision,
    timed.outcome, timed.is_open,
    epoch(timed.ended_at) - epoch(timed.requested_at) as calendar_s,
    core.worked(e, timed.ended_at)
        - core.worked(s, timed.requested_at) as business_s,
    timed.source_kind, timed.waited_on, timed.event_ord
from timed
left join core.calendar_hours as s
    on s.calendar = timed.calendar and s.hour_no = core.hour_no(timed.requested_at)
left join core.calendar_hours as e
    on e.calendar = timed.calendar and e.hour_no = core.hour_no(timed.ended_at)
;

comment on table marts.decision_waits is 'One row per decision request: a visit to a Jira decision state, or a GitHub decision label from added to removed (or the item closed).';
comment on column marts.decision_waits.item_id is 'jira:<issue key> or github:<owner>/<repo>#<number>.';
comment on column marts.decision_waits.requested_at is 'When the item started waiting for a decision (UTC).';
comment on column marts.decision_waits.decided_at is 'When the decision was made (status left, label removed, item closed); null while open.';
comment on column marts.decision_waits.decided_by is 'Who made the decision (actor of the transition, label removal or close).';
comment on column marts.decision_waits.decided_by_team is 'Team of decided_by at decided_at.';
comment on column marts.decision_waits.owner_team is 'Team owning the item.';
comment on column marts.decision_waits.is_remote_decision is 'Decided by someone of another (known) team than the (known) owning team.';
comment on column marts.decision_waits.outcome is 'decided (status left, label removed) or closed (the item closed or merged while waiting); null while open.';
comment on column marts.decision_waits.is_open is 'Still open at as_of (then the duration is cut at as_of).';
comment on column marts.decision_waits.calendar_s is 'Wall-clock seconds from requested_at to decided_at (or as_of).';
comment on column marts.decision_waits.business_s is 'Working seconds in the item team''s calendar over the same span.';
comment on column marts.decision_waits.source_kind is 'jira_status or github_label.';
comment on column marts.decision_waits.waited_on is 'Jira: the assignee during the visit.';
comment on column marts.decision_waits.event_ord is 'Order of the requesting event within the item''s event log.';
