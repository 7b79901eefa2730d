-- GET /audit/export.csv: the events GET /audit lists (same filters and order, no paging), each as its whole CSV
-- record (CRLF included), written by PostgreSQL: the handler streams them with a binary COPY and only passes the
-- bytes on (endpoints.md, GET /audit/export.csv). In CSV_HEADER order:
--   created_at   the JSON API's timestamp: UTC, six fraction digits unless the fraction is zero, then Z
--   kind, actor_email, summary: text a user controls, so one CSV field each: empty for null; a leading ' when the
--                value begins with = + - @ TAB or CR (a spreadsheet formula); then quoted, quotes doubled, only
--                when it holds a comma, a double quote, CR or LF. The first test is the common case: nothing to do.
--   actor_kind, actor_id, status: fixed words and digits, never quoted nor defused
--   payload_json: inputs, outputs and entity_refs as PostgreSQL writes jsonb (as GET /audit returns them), then
--                each extra only when set (approval_required only when true), strings escaped by to_json; always
--                begins with { and is always quoted.
-- tests/services/test_audit_export.py reads the same rules in Python and compares the two byte for byte.
SELECT replace(to_char(a.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || 'Z', '.000000Z', 'Z')
    || ',' || CASE WHEN a.tool !~ E'^[=+@\t\r-]|[",\r\n]' THEN a.tool
                   WHEN a.tool ~ E'[",\r\n]' THEN '"' || replace(CASE WHEN left(a.tool, 1) IN ('=', '+', '-', '@', E'\t', E'\r') THEN '''' ELSE '' END || a.tool, '"', '""') || '"'
                   ELSE '''' || a.tool END
    || ',' || CASE WHEN a.actor_kind = 'human' THEN 'user' ELSE a.actor_kind::text END
    || ',' || coalesce(a.actor_id::text, '')
    || ',' || CASE WHEN u.email IS NULL THEN ''
                   WHEN u.email !~ E'^[=+@\t\r-]|[",\r\n]' THEN u.email
                   WHEN u.email ~ E'[",\r\n]' THEN '"' || replace(CASE WHEN left(u.email, 1) IN ('=', '+', '-', '@', E'\t', E'\r') THEN '''' ELSE '' END || u.email, '"', '""') || '"'
                   ELSE '''' || u.email END
    || ',' || CASE WHEN a.status IN ('failed', 'rejected') THEN 'error' ELSE 'ok' END
    || ',' || CASE WHEN s.summary !~ E'^[=+@\t\r-]|[",\r\n]' THEN s.summary
                   WHEN s.summary ~ E'[",\r\n]' THEN '"' || replace(CASE WHEN left(s.summary, 1) IN ('=', '+', '-', '@', E'\t', E'\r') THEN '''' ELSE '' END || s.summary, '"', '""') || '"'
                   ELSE '''' || s.summary END
    || ',"' || replace('{"inputs":' || a.inputs::text || ',"outputs":' || a.outputs::text
                       || ',"entity_refs":' || a.entity_refs::text
                       || coalesce(',"driver":' || to_json(a.driver)::text, '')
                       || coalesce(',"error":' || to_json(a.error)::text, '')
                       || CASE WHEN a.approval_required THEN ',"approval_required":true' ELSE '' END
                       || coalesce(',"approved_by":"' || a.approved_by::text || '"', '')
                       || coalesce(',"approved_at":"' || replace(to_char(a.approved_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || 'Z', '.000000Z', 'Z') || '"', '')
                       || coalesce(',"completed_at":"' || replace(to_char(a.completed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || 'Z', '.000000Z', 'Z') || '"', '')
                       || '}', '"', '""')
    || E'"\r\n' AS record
FROM audit_events AS a
LEFT JOIN users AS u ON u.id = a.actor_id
CROSS JOIN LATERAL (SELECT CASE WHEN a.error IS NOT NULL THEN a.tool || ': ' || a.error
                                WHEN a.driver IS NOT NULL THEN a.tool || ' via ' || a.driver || ' (' || a.status::text || ')'
                                ELSE a.tool || ' (' || a.status::text || ')' END AS summary) AS s
