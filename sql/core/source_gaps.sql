-- Data quality: optional endpoints a source lacked or refused in the latest extract of each partition (the
-- manifest's `gaps`), and what the marts miss because of it. No rows when every endpoint answered.
-- depends_on: raw.extracts
-- key: source, partition, endpoint
create or replace table core.source_gaps as
with extracts as (
    select source, partition, extract_id, manifest
    from raw.extracts
    where complete
),

latest as (
    -- a partition's newest finished extract says what its site offers now
    select source, partition, extract_id, manifest
    from extracts
    qualify row_number() over (partition by source, partition order by extract_id desc) = 1
),

gaps as (
    select
        latest.source,
        latest.partition,
        latest.extract_id,
        unnest(from_json(json_extract(latest.manifest, '$.gaps'),
            '[{"endpoint": "VARCHAR", "status": "INTEGER", "what": "VARCHAR", "error": "VARCHAR"}]')) as gap
    from latest
    where json_array_length(json_extract(latest.manifest, '$.gaps')) > 0
)

select
    source,
    partition,
    gap.endpoint as endpoint,
    gap.status as status,
    gap.what as what,
    gap.error as error,
    extract_id
from gaps
order by source, partition, endpoint;

comment on table core.source_gaps is 'Optional endpoints (Jira link types, fields, Service Management approvals) a source lacked (404) or refused (403) in the latest extract of a partition; the run went on without them. Named by the sources_complete warning check.';
comment on column core.source_gaps.source is 'jira or github.';
comment on column core.source_gaps.partition is 'The landing partition: a Jira project key, a repository, or _site for site-wide streams.';
comment on column core.source_gaps.endpoint is 'Method and path of the endpoint, e.g. GET /rest/api/3/issueLinkType.';
comment on column core.source_gaps.status is 'The HTTP status the site answered (403 refused, 404 absent or disabled).';
comment on column core.source_gaps.what is 'What is missing from the marts because of it.';
comment on column core.source_gaps.error is 'The one-line error the request got, as the connector saw it.';
comment on column core.source_gaps.extract_id is 'The extract whose manifest recorded the gap.';
