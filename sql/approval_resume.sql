-- The resume step of a turn (chat-and-agent.md §6.5): decisions not yet acted on, each claimed once.

-- name: list-unconsumed-decisions
-- The session's granted, rejected or expired approvals not yet consumed, by requested_at then id
-- (pending_approvals_session_id_requested_at_idx).
SELECT a.id, a.tenant_id, a.session_id, a.tool_name, a.tool_call_id, a.summary, a.turn_id, a.payload,
       a.requested_at, a.expires_at, a.status, a.granted, a.resolved_at, a.resolved_by_user_id, a.reason,
       a.consumed_at
FROM pending_approvals AS a
WHERE a.session_id = :session_id AND a.tenant_id = :tenant_id AND a.status <> 'pending' AND a.consumed_at IS NULL
ORDER BY a.requested_at, a.id;

-- name: consume-approval^
-- Claim a decision for this turn: returns the id only for the first claimer (consumed_at is set once).
UPDATE pending_approvals
SET consumed_at = :now
WHERE id = :id AND tenant_id = :tenant_id AND status <> 'pending' AND consumed_at IS NULL
RETURNING id;
