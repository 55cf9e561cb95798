-- Every event of every item in one log (Jira change items and GitHub timeline events), in event order:
-- the trail every metric can be traced back to.
-- depends_on: core.jira_changes, core.github_events
create or replace view core.item_events as
select
    item_id, 'jira' as source, created_at as event_at, ord, history_id::varchar as event_id, field_lower as event_type,
    author_id as actor_id, author_is_bot as actor_is_bot,
    coalesce(from_person, from_status, from_string) as from_value,
    coalesce(to_person, to_status, to_string) as to_value,
    from_state, to_state
from core.jira_changes
union all
select
    item_id, 'github', event_at, ord, event_id::varchar, event, actor_id, actor_is_bot,
    null, coalesce(requested_of, assignee_id, label, review_state), null, null
from core.github_events
