-- Jira change items up to as_of, in event order (see core.jira_changes_all).
-- depends_on: core.jira_changes_all
create or replace view core.jira_changes as
select * from core.jira_changes_all where created_at <= (select as_of from config.run)
