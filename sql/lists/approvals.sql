-- GET /approvals (endpoints.md, Approvals): every pending_approvals column of a page. voyagent/listing.py
-- completes it (filters: services/approvals.py):
--   WHERE p.tenant_id = $1 [AND p.status = $ AND p.session_id = $]
--   ORDER BY p.requested_at DESC, p.id DESC LIMIT $n
-- with AND (p.requested_at, p.id) < ($n, $m) for a cursor, a deferred join on the ids for an offset.
-- Indexes (schema.sql): pending_approvals_tenant_id_status_requested_at_id_idx (a status),
-- …_tenant_id_requested_at_id_idx (status=all), …_session_id_requested_at_idx (a session).
SELECT p.id, p.tenant_id, p.session_id, p.tool_name, p.tool_call_id, p.summary, p.turn_id, p.payload,
       p.requested_at, p.expires_at, p.status, p.granted, p.resolved_at, p.resolved_by_user_id, p.reason,
       p.consumed_at
FROM pending_approvals AS p
