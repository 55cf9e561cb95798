-- Complete histories of one issue; a later fetch is a superset, staging unions and dedupes by history id.
select payload->>'issueId' as id, md5(payload::varchar) as updated, payload, filename from _pages
