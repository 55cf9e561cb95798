select payload->>'id' as id, payload->'fields'->>'updated' as updated, payload, filename from _pages
