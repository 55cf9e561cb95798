-- Jira issues and the pull requests that implement them. A pull request links to an issue when its branch name,
-- title or body names the issue's key: the matches of the site's issue_key_pattern (default: Jira key syntax,
-- word-bounded), compared case-insensitively with the keys of the synced issues. One row per direction:
-- issue -> pull request (`implemented_by`) and pull request -> issue (`implements`).
-- depends_on: core.work_items, staging.stg_github__pull_requests
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
    select pr.item_id, pr.head_ref, pr.title, pr.body
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

linked as (
    select issues.item_id as issue_id, named.item_id as pull_id,
        string_agg(named.place, ',' order by named.place_no) as found_in
    from named
    join issues using (issue_key)
    group by issues.item_id, named.item_id
)

select issue_id as item_id, pull_id as linked_item_id, 'implemented_by' as link_kind, found_in from linked
union all
select pull_id, issue_id, 'implements', found_in from linked
;

comment on table marts.item_links is 'Jira issues and their pull requests (a key named in the branch, title or body), one row per direction.';
comment on column marts.item_links.item_id is 'The item the link is seen from: jira:<issue key> or github:<owner>/<repo>#<number>.';
comment on column marts.item_links.linked_item_id is 'The item at the other end.';
comment on column marts.item_links.link_kind is 'implemented_by (issue -> pull request) or implements (pull request -> issue).';
comment on column marts.item_links.found_in is 'Where the pull request names the issue: branch, title, body (comma-separated, in that order).';
