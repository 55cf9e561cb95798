-- A reconcile snapshot: every issue id of a project at extract time; kept per extract.
select payload->>'id' as id, regexp_extract(filename, '([^/\\]+)[/\\][^/\\]+$', 1) as updated, payload, filename
from _pages
