-- GET /audit/export.csv: the events GET /audit lists (same filters and order, no paging), each as its whole CSV
-- record (CRLF included), written by PostgreSQL: the handler streams them with a binary COPY and only passes the
-- bytes on (endpoints.md, GET /audit/export.csv). Each event keeps its record but the actor's e-mail, which can
-- change: csv_record_head (created_at,kind,actor_kind,actor_id) and csv_record_tail (status,summary,payload_json,
-- CRLF) are generated columns computed when the event is written (migration 0009 holds the rules); the e-mail is
-- one CSV field by the same rules (audit_csv_field), computed in the users' side of the join: once per actor
-- rather than once per event (a quarter of the statement's time).
-- tests/services/test_audit_export.py reads the rules in Python and compares the two byte for byte.
SELECT a.csv_record_head || ',' || coalesce(e.field, '') || ',' || a.csv_record_tail AS record
FROM audit_events AS a
LEFT JOIN LATERAL (SELECT audit_csv_field(u.email) AS field FROM users AS u WHERE u.id = a.actor_id) AS e ON true
