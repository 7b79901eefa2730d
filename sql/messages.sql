-- Chat turns (chat-and-agent.md §2, §5): the session as a turn reads it, its stored messages, the title rule and
-- the id counter written at the end of each turn. Turns of one session never overlap (the turn lock).

-- name: get-turn-session^
-- The session a new message is sent to, in the caller's tenant, with the last event id stored for it.
SELECT id, tenant_id, title, last_event_id
FROM sessions
WHERE id = :id AND tenant_id = :tenant_id;

-- name: admit-turn^
-- Under the turn lock (§2 step 1): the session read again (a delete may have committed since the first read), the
-- session's lazy approval sweep (1d, before the approvals map), whether any of its approvals is not yet consumed
-- (none: the resume step has nothing to act on, and only this session's turns create approvals) and the tenant's
-- settings (null columns when the tenant has no row yet). One statement, one round trip; the EXISTS sees the
-- rows as they were before the sweep, which changes no consumed_at. Indexes pending_approvals_session_id_requested_at_idx,
-- sessions_pkey, tenant_settings_pkey.
WITH swept AS (
    UPDATE pending_approvals
    SET status = 'expired'
    WHERE session_id = :id AND tenant_id = :tenant_id AND status = 'pending' AND expires_at <= :now
)
SELECT s.id, s.tenant_id, s.title, s.last_event_id,
       EXISTS (SELECT 1 FROM pending_approvals AS a
               WHERE a.session_id = s.id AND a.tenant_id = s.tenant_id AND a.consumed_at IS NULL) AS unconsumed_approvals,
       t.tenant_id AS settings_tenant_id, t.model, t.system_prompt_suffix, t.rate_limit_per_minute,
       t.rate_limit_per_hour, t.locale, t.default_currency
FROM sessions AS s
LEFT JOIN tenant_settings AS t ON t.tenant_id = s.tenant_id
WHERE s.id = :id AND s.tenant_id = :tenant_id;

-- name: insert-user-message!
-- §2 step 5 in one statement: the title rule of §1 (a session whose title is null or empty and that has no stored
-- message yet; the CTE sees the messages as they were before this insert), then the user row, its sequence
-- continuing from the session's highest (messages_session_id_sequence_key answers both).
WITH titled AS (
    UPDATE sessions
    SET title = :title, updated_at = now()
    WHERE id = :session_id AND (title IS NULL OR title = '')
      AND NOT EXISTS (SELECT 1 FROM messages AS m WHERE m.session_id = :session_id)
)
INSERT INTO messages (id, session_id, role, content, sequence)
SELECT :id::uuid, :session_id::uuid, 'user', :content::jsonb, COALESCE(max(m.sequence) + 1, 0)
FROM messages AS m
WHERE m.session_id = :session_id;

-- name: insert-message$
-- Append one message; its sequence continues from the session's highest (messages_session_id_sequence_key).
INSERT INTO messages (id, session_id, role, content, sequence)
SELECT :id::uuid, :session_id::uuid, :role::varchar, :content::jsonb, COALESCE(max(m.sequence) + 1, 0)
FROM messages AS m
WHERE m.session_id = :session_id
RETURNING sequence;

-- name: insert-assistant-message!
-- §2 step 8 in one statement: the assistant row (as insert-message) and sessions.last_event_id set to the id the
-- turn's final is about to get (never lowered; the turn writes it again when the final got another id).
WITH counted AS (
    UPDATE sessions
    SET last_event_id = greatest(last_event_id, :last_event_id)
    WHERE id = :session_id
)
INSERT INTO messages (id, session_id, role, content, sequence)
SELECT :id::uuid, :session_id::uuid, 'assistant', :content::jsonb, COALESCE(max(m.sequence) + 1, 0)
FROM messages AS m
WHERE m.session_id = :session_id;

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
