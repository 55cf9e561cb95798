select payload->>'id' as id, payload->>'updated_at' as updated, payload, filename from _pages
