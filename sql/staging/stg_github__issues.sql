-- One row per GitHub issue that is not a pull request (its latest version), typed. Parsed once.
-- depends_on: raw.github__issues
-- key: item_id
create or replace table staging.stg_github__issues as
with latest as (
    select * from raw.github__issues
    qualify row_number() over (
        partition by id order by try_cast(updated as timestamptz) desc nulls last, loaded_at desc
    ) = 1
),

parsed as (
    select
        id, partition, loaded_at,
        from_json(payload, '{
            "number": "INTEGER", "title": "VARCHAR", "url": "VARCHAR", "repository_url": "VARCHAR",
            "user": {"login": "VARCHAR"}, "created_at": "VARCHAR", "updated_at": "VARCHAR",
            "closed_at": "VARCHAR", "state": "VARCHAR", "state_reason": "VARCHAR",
            "labels": [{"name": "VARCHAR"}], "assignees": [{"login": "VARCHAR"}], "pull_request": "JSON"
        }') as p
    from latest
),

located as (
    select *, coalesce(regexp_extract(p.repository_url, 'repos/([^/]+/[^/]+)$', 1),
                       regexp_extract(p.url, 'repos/([^/]+/[^/]+)/issues', 1), partition) as repository
    from parsed
    where p.pull_request is null
)

select
    id as issue_id,
    repository,
    p.number as number,
    'github:' || repository || '#' || p.number as item_id,
    p.title as title,
    p.user.login as author_login,
    p.created_at::timestamptz as created_at,
    p.updated_at::timestamptz as updated_at,
    try_cast(p.closed_at as timestamptz) as closed_at,
    p.state as state,
    p.state_reason as state_reason,
    list_transform(coalesce(p.labels, []), lambda l: l.name) as labels,
    list_transform(coalesce(p.assignees, []), lambda a: a.login) as assignees,
    loaded_at
from located
