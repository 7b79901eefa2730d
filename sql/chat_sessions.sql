-- Chat sessions (chat-and-agent.md §1; endpoints.md, Chat). Sessions are created by POST /chat/sessions and by
-- POST /enquiries/{id}/promote-to-session; both produce identical rows. The paginated list's SELECT is
-- sql/lists/chat_sessions.sql, completed by voyagent/listing.py.

-- name: insert-session^
-- A new session of the tenant: actor = the calling user, actor_kind human, title null.
INSERT INTO sessions (id, tenant_id, actor_id, actor_kind, title)
VALUES (:id, :tenant_id, :actor_id, 'human', NULL)
RETURNING id, tenant_id, actor_id, actor_kind::text AS actor_kind, title, last_event_id, created_at, updated_at;

-- name: get-session-summary^
-- One session of the tenant with its number of stored messages (messages_session_id_sequence_key counts them).
SELECT s.id, s.tenant_id, s.actor_id, s.title, s.created_at,
       (SELECT count(*) FROM messages AS m WHERE m.session_id = s.id) AS message_count
FROM sessions AS s
WHERE s.id = :id AND s.tenant_id = :tenant_id;

-- name: list-session-pending-approvals
-- The session's approvals still pending (after the caller's lazy sweep), oldest first; index
-- pending_approvals_session_id_requested_at_idx.
SELECT a.id AS approval_id, a.tool_name, a.summary
FROM pending_approvals AS a
WHERE a.session_id = :session_id AND a.tenant_id = :tenant_id AND a.status = 'pending'
ORDER BY a.requested_at, a.id;

-- name: rename-session^
-- PATCH /chat/sessions/{id}: store the (already trimmed and checked) title; nothing when not in the tenant.
UPDATE sessions
SET title = :title, updated_at = now()
WHERE id = :id AND tenant_id = :tenant_id
RETURNING id;

-- name: lock-session^
-- DELETE /chat/sessions/{id}: the session row locked for the delete, so concurrent deletes queue here and the
-- later ones find nothing (404) instead of meeting the first one's turn lock.
SELECT id
FROM sessions
WHERE id = :id AND tenant_id = :tenant_id
FOR UPDATE;

-- name: unlink-session-enquiries!
-- DELETE /chat/sessions/{id}: enquiries of the tenant linked to the session lose the (soft, FK-less) link;
-- index enquiries_session_id_created_at_id_idx (partial, session_id IS NOT NULL).
UPDATE enquiries
SET session_id = NULL, updated_at = now()
WHERE session_id = :session_id AND tenant_id = :tenant_id;

-- name: delete-session!
-- DELETE /chat/sessions/{id}: the row; messages, pending_approvals and itinerary_items go with it (FK CASCADE,
-- each served by its (session_id, …) index). Invoices, bills, journal entries and audit events stay.
DELETE FROM sessions
WHERE id = :id AND tenant_id = :tenant_id;
