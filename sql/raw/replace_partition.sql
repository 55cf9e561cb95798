-- Full refresh: drop what was loaded for one partition ($1) before its new complete extract ($2), which
-- replaces it. Returns the number of rows dropped.
delete from raw.{table}
where partition = $1 and extract_id < $2
