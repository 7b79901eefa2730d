-- name: count-active-sessions$
-- Distinct chat sessions (all tenants) with a message in the last hour: voyagent_api_active_sessions.
SELECT count(DISTINCT session_id)
FROM messages
WHERE created_at > now() - interval '3600 seconds';
