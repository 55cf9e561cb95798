-- All current remote links of one issue per record: the newest fetch of an issue replaces the older ones.
select payload->>'issueId' as id, md5(payload::varchar) as updated, payload, filename from _pages
