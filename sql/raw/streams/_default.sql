-- Any stream without its own key rule: the payload itself is the identity.
select md5(payload::varchar) as id, '' as updated, payload, filename from _pages
