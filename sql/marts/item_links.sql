-- Jira issues and the pull requests that implement them. A pull request links to an issue when its branch name,
-- title or body names the issue's key: the matches of the site's issue_key_pattern (default: Jira key syntax,
-- word-bounded), compared case-insensitively with the keys of the synced issues; or when one of the issue's
-- remote links (web links) is the pull request's address (owner/repo compared case-insensitively). One row per
-- direction: issue -> pull request (`implemented_by`) and pull request -> issue (`implements`).
-- depends_on: core.work_items, staging.stg_github__pull_requests, staging.stg_jira__remote_links
-- key: item_id, linked_item_id
create or replace table marts.item_links as
with pattern as (
    select '(?i)' || coalesce(
        (select value from config.settings where key = 'issue_key_pattern'),
        '\b[a-z][a-z0-9_]+-[0-9]+\b'
    ) as pattern
),

issues as (
    select item_id, upper(native_key) as issue_key from core.work_items where source = 'jira'
),

pulls as (
    -- only pull requests that exist at as_of (core.work_items)
    select pr.item_id, pr.repository, pr.number, pr.head_ref, pr.title, pr.body
    from staging.stg_github__pull_requests as pr
    semi join core.work_items as wi on wi.item_id = pr.item_id
),

places as (
    select item_id, 1 as place_no, 'branch' as place, head_ref as text from pulls where head_ref is not null
    union all select item_id, 2, 'title', title from pulls where title is not null
    union all select item_id, 3, 'body', body from pulls where body is not null
),

named as (
    select distinct places.item_id, places.place_no, places.place,
        upper(unnest(regexp_extract_all(places.text, (select pattern from pattern)))) as issue_key
    from places
),

remote as (
    -- an issue's remote link whose URL is the pull request's address
    select distinct 'jira:' || rl.issue_key as issue_id, pulls.item_id as pull_id, 4 as place_no,
        'remote_link' as place
    from staging.stg_jira__remote_links as rl
    join pulls on lower(pulls.repository) = lower(rl.pull_repository) and pulls.number = rl.pull_number
    semi join issues on issues.item_id = 'jira:' || rl.issue_key
),

found as (
    select issues.item_id as issue_id, named.item_id as pull_id, named.place_no, named.place
    from named
    join issues using (issue_key)
    union all
    select issue_id, pull_id, place_no, place from remote
),

linked as (
    select issue_id, pull_id, string_agg(place, ',' order by place_no) as found_in
    from found
    group by issue_id, pull_id
)

select issue_id as item_id, pull_id as linked_item_id, 'implemented_by' as link_kind, found_in from linked
union all
select pull_id, issue_id, 'implements', found_in from linked
;

comment on table marts.item_links is 'Jira issues and their pull requests (a key named in the branch, title or body, or a remote link of the issue to the pull request), one row per direction.';
comment on column marts.item_links.item_id is 'The item the link is seen from: jira:<issue key> or github:<owner>/<repo>#<number>.';
comment on column marts.item_links.linked_item_id is 'The item at the other end.';
comment on column marts.item_links.link_kind is 'implemented_by (issue -> pull request) or implements (pull request -> issue).';
comment on column marts.item_links.found_in is 'Where the link was found: branch, title, body (the pull request names the issue''s key), remote_link (the issue links to the pull request); comma-separated, in that order.';
