-- asset: marts.item_flow
-- severity: blocking
-- description: every pull request GitHub reports merged (by as_of) is finished in item_flow
-- Offending rows: merged pull requests that never end (their timeline events are missing or keyed elsewhere).
select flow.item_id, pr.merged_at, flow.current_state
from marts.item_flow as flow
join staging.stg_github__pull_requests as pr using (item_id)
where pr.merged_at <= (select as_of from config.run)
    and flow.finished_at is null
order by flow.item_id
