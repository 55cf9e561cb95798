-- One row per pull request (its latest version), typed. Each payload is parsed once.
-- depends_on: raw.github__pull_requests
-- key: item_id
create or replace table staging.stg_github__pull_requests as
with latest as (
    select * from raw.github__pull_requests
    qualify row_number() over (
        partition by id order by try_cast(updated as timestamptz) desc nulls last, loaded_at desc
    ) = 1
),

parsed as (
    select
        id, partition, loaded_at,
        from_json(payload, '{
            "number": "INTEGER", "title": "VARCHAR", "url": "VARCHAR", "user": {"login": "VARCHAR"},
            "created_at": "VARCHAR", "updated_at": "VARCHAR", "closed_at": "VARCHAR", "merged_at": "VARCHAR",
            "merged_by": {"login": "VARCHAR"}, "draft": "BOOLEAN", "state": "VARCHAR",
            "labels": [{"name": "VARCHAR"}], "requested_reviewers": [{"login": "VARCHAR"}],
            "requested_teams": [{"slug": "VARCHAR"}], "base": {"repo": {"full_name": "VARCHAR"}},
            "head": {"ref": "VARCHAR"}, "body": "VARCHAR"
        }') as p
    from latest
),

located as (
    select *, coalesce(p.base.repo.full_name, regexp_extract(p.url, 'repos/([^/]+/[^/]+)/pulls', 1), partition)
        as repository
    from parsed
)

select
    id as pull_id,
    repository,
    p.number as number,
    'github:' || repository || '#' || p.number as item_id,
    p.title as title,
    p.head.ref as head_ref,
    p.body as body,
    p.user.login as author_login,
    p.created_at::timestamptz as created_at,
    p.updated_at::timestamptz as updated_at,
    try_cast(p.closed_at as timestamptz) as closed_at,
    try_cast(p.merged_at as timestamptz) as merged_at,
    p.merged_by.login as merged_by_login,
    coalesce(p.draft, false) as is_draft,
    p.state as state,
    list_transform(coalesce(p.labels, []), lambda l: l.name) as labels,
    list_transform(coalesce(p.requested_reviewers, []), lambda r: r.login) as requested_reviewers,
    list_transform(coalesce(p.requested_teams, []), lambda t: t.slug) as requested_teams,
    loaded_at
from located
