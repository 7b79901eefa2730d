-- Chat turns (chat-and-agent.md §2, §5): the session as a turn reads it, its stored messages, the title rule and
-- the id counter written at the end of each turn. Turns of one session never overlap (the turn lock).

-- name: get-turn-session^
-- The session a new message is sent to, in the caller's tenant, with the last event id stored for it.
SELECT id, tenant_id, title, last_event_id
FROM sessions
WHERE id = :id AND tenant_id = :tenant_id;

-- name: set-first-title!
-- §1 Title: the first non-blank message names a session whose title is null or empty and that has no stored
-- message yet (messages_session_id_sequence_key answers the NOT EXISTS).
UPDATE sessions
SET title = :title, updated_at = now()
WHERE id = :id AND (title IS NULL OR title = '')
  AND NOT EXISTS (SELECT 1 FROM messages AS m WHERE m.session_id = :id);

-- name: insert-message$
-- Append one message; its sequence continues from the session's highest (messages_session_id_sequence_key).
INSERT INTO messages (id, session_id, role, content, sequence)
SELECT :id::uuid, :session_id::uuid, :role::varchar, :content::jsonb, COALESCE(max(m.sequence) + 1, 0)
FROM messages AS m
WHERE m.session_id = :session_id
RETURNING sequence;

-- name: list-messages
-- The session's stored messages, oldest first: the history a backend sees (messages_session_id_sequence_key).
SELECT role, content
FROM messages
WHERE session_id = :session_id
ORDER BY sequence;

-- name: store-last-event-id!
-- End of a turn: the session's id counter, never lowered (re-initialises the counter after a restart without Redis).
UPDATE sessions
SET last_event_id = greatest(last_event_id, :last_event_id)
WHERE id = :id;
