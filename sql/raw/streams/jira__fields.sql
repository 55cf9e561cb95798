select payload->>'id' as id, md5(payload::varchar) as updated, payload, filename from _pages
