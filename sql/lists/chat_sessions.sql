-- GET /chat/sessions (endpoints.md, Chat): the columns of a list item and the session's number of stored
-- messages (an index-only count on messages_session_id_sequence_key per row of the page). voyagent/listing.py
-- completes it (no filters: services/sessions.py):
--   WHERE s.tenant_id = $1 ORDER BY s.created_at DESC, s.id DESC LIMIT $2
-- with AND (s.created_at, s.id) < ($n, $m) for a cursor, a deferred join on the ids for an offset.
-- Index (schema.sql): sessions_tenant_id_created_at_id_idx (order, cursor, offset skip, count).
SELECT s.id, s.title, s.created_at,
       (SELECT count(*) FROM messages AS m WHERE m.session_id = s.id) AS message_count
FROM sessions AS s
