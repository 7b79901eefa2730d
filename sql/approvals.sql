-- Approvals (endpoints.md, Approvals; chat-and-agent.md §6.3–6.4). The paginated list's SELECT is
-- sql/lists/approvals.sql, completed by voyagent/listing.py (status and session filters are optional).

-- name: insert-approval^
-- A pending approval requested by the agent; returns nothing when the id is already taken (caller retries -2, -3, …).
INSERT INTO pending_approvals (id, tenant_id, session_id, tool_name, tool_call_id, summary, turn_id, payload,
                               requested_at, expires_at, status)
VALUES (:id, :tenant_id, :session_id, :tool_name, :tool_call_id, :summary, :turn_id, :payload, :requested_at,
        :expires_at, 'pending')
ON CONFLICT (id) DO NOTHING
RETURNING id, tenant_id, session_id, tool_name, tool_call_id, summary, turn_id, payload, requested_at, expires_at,
          status, granted, resolved_at, resolved_by_user_id, reason, consumed_at;

-- name: get-approval^
-- One approval joined with its session, in the caller's tenant (and session, when :session_id is not null).
SELECT a.id, a.tenant_id, a.session_id, a.tool_name, a.tool_call_id, a.summary, a.turn_id, a.payload,
       a.requested_at, a.expires_at, a.status, a.granted, a.resolved_at, a.resolved_by_user_id, a.reason,
       a.consumed_at
FROM pending_approvals AS a
JOIN sessions AS s ON s.id = a.session_id
WHERE a.id = :id AND a.tenant_id = :tenant_id AND s.tenant_id = :tenant_id
  AND (:session_id::uuid IS NULL OR a.session_id = :session_id::uuid);

-- name: expire-approval^
-- Lazy expiry of one approval: pending and past its deadline → expired; returns the row when it switched.
UPDATE pending_approvals
SET status = 'expired'
WHERE id = :id AND tenant_id = :tenant_id AND status = 'pending' AND expires_at <= :now
RETURNING id, tenant_id, session_id, tool_name, tool_call_id, summary, turn_id, payload, requested_at, expires_at,
          status, granted, resolved_at, resolved_by_user_id, reason, consumed_at;

-- name: expire-tenant-approvals!
-- Lazy expiry sweep of the whole tenant (GET /approvals), via the (tenant_id, status, …) index.
UPDATE pending_approvals
SET status = 'expired'
WHERE tenant_id = :tenant_id AND status = 'pending' AND expires_at <= :now;

-- name: expire-session-approvals!
-- Lazy expiry sweep of one session (chat session reads, the approvals map, the start of a turn).
UPDATE pending_approvals
SET status = 'expired'
WHERE session_id = :session_id AND tenant_id = :tenant_id AND status = 'pending' AND expires_at <= :now;

-- name: decide-approval^
-- Grant or reject atomically: only a row that is still pending and not past its deadline changes.
UPDATE pending_approvals
SET status = :status::approval_status, granted = :granted, resolved_at = :now, resolved_by_user_id = :resolved_by,
    reason = :reason
WHERE id = :id AND tenant_id = :tenant_id AND status = 'pending' AND expires_at > :now
RETURNING id, tenant_id, session_id, tool_name, tool_call_id, summary, turn_id, payload, requested_at, expires_at,
          status, granted, resolved_at, resolved_by_user_id, reason, consumed_at;
