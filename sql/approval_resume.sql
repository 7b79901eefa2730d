-- The resume step of a turn (chat-and-agent.md §6.5): decisions not yet acted on, each claimed once.

-- name: sweep-unconsumed-decisions
-- The session's lazy expiry sweep, then its granted, rejected or expired approvals not yet consumed, by
-- requested_at then id (pending_approvals_session_id_requested_at_idx): one statement. The second branch sees the
-- rows as they were before the sweep (pending ones excluded), the first the rows the sweep just expired: no row twice.
WITH swept AS (
    UPDATE pending_approvals
    SET status = 'expired'
    WHERE session_id = :session_id AND tenant_id = :tenant_id AND status = 'pending' AND expires_at <= :now
    RETURNING id, tenant_id, session_id, tool_name, tool_call_id, summary, turn_id, payload, requested_at, expires_at,
              status, granted, resolved_at, resolved_by_user_id, reason, consumed_at
)
SELECT * FROM swept WHERE consumed_at IS NULL
UNION ALL
SELECT a.id, a.tenant_id, a.session_id, a.tool_name, a.tool_call_id, a.summary, a.turn_id, a.payload,
       a.requested_at, a.expires_at, a.status, a.granted, a.resolved_at, a.resolved_by_user_id, a.reason,
       a.consumed_at
FROM pending_approvals AS a
WHERE a.session_id = :session_id AND a.tenant_id = :tenant_id AND a.status <> 'pending' AND a.consumed_at IS NULL
ORDER BY requested_at, id;

-- name: consume-approval^
-- Claim a decision for this turn: returns the id only for the first claimer (consumed_at is set once).
UPDATE pending_approvals
SET consumed_at = :now
WHERE id = :id AND tenant_id = :tenant_id AND status <> 'pending' AND consumed_at IS NULL
RETURNING id;
