-- Jira remote links (web links of an issue), one row per link, from the newest fetch of each issue's links.
-- A link whose URL is a pull request's web address (https://<host>/<owner>/<repo>/pull/<number>, anything after
-- the number ignored) names that pull request; the owner and repository as written (GitHub ignores case).
-- depends_on: raw.jira__remote_links, staging.stg_jira__issues
-- key: issue_id, remote_link_id
create or replace table staging.stg_jira__remote_links as
with latest as (
    select * from raw.jira__remote_links
    qualify row_number() over (partition by id order by loaded_at desc, extract_id desc) = 1
),

links as (
    select
        latest.payload->>'issueId' as issue_id,
        latest.payload->>'issueKey' as issue_key,
        unnest(cast(latest.payload->'remoteLinks' as json[])) as link
    from latest
    where (latest.payload->>'issueId') in (select issue_id from staging.stg_jira__issues)
),

parsed as (
    select
        issue_id,
        issue_key,
        link->>'id' as remote_link_id,
        link->'object'->>'url' as url,
        link->'object'->>'title' as title,
        link->>'relationship' as relationship,
        regexp_extract(link->'object'->>'url', '^https?://[^/]+/([^/?#]+/[^/?#]+)/pull/([0-9]+)(?:[/?#].*)?$', 1)
            as pull_repository,
        try_cast(regexp_extract(link->'object'->>'url', '^https?://[^/]+/([^/?#]+/[^/?#]+)/pull/([0-9]+)(?:[/?#].*)?$', 2)
            as integer) as pull_number
    from links
)

select
    issue_id, issue_key, remote_link_id, url, title, relationship,
    nullif(pull_repository, '') as pull_repository,
    pull_number
from parsed
;

comment on table staging.stg_jira__remote_links is 'Remote links (web links) of Jira issues, one row per link, as last fetched.';
comment on column staging.stg_jira__remote_links.issue_id is 'Jira issue id.';
comment on column staging.stg_jira__remote_links.issue_key is 'Jira issue key.';
comment on column staging.stg_jira__remote_links.remote_link_id is 'The remote link''s id.';
comment on column staging.stg_jira__remote_links.url is 'The linked page''s address.';
comment on column staging.stg_jira__remote_links.title is 'The link''s title.';
comment on column staging.stg_jira__remote_links.relationship is 'The link''s relationship text (e.g. mentioned in), if any.';
comment on column staging.stg_jira__remote_links.pull_repository is 'owner/repo of the pull request the URL names (as written), else null.';
comment on column staging.stg_jira__remote_links.pull_number is 'Number of the pull request the URL names, else null.';
