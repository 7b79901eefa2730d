-- GET /audit (endpoints.md, Audit): the columns of an AuditEvent and its actor's e-mail; jsonb decoded by the
-- pool's codec, ids as UUIDs. voyagent/listing.py completes it (filters: services/audit_log.py):
--   WHERE a.tenant_id = $1 [AND a.actor_id = $ AND a.tool = $ / = ANY($) AND a.started_at >= $ AND <= $]
--   ORDER BY a.started_at DESC, a.id DESC LIMIT $n
-- with AND (a.started_at, a.id) < ($n, $m) for a cursor, a deferred join on the ids for an offset.
-- Indexes (schema.sql): audit_events_tenant_id_started_at_id_idx (order, cursor, offset skip, days),
-- …_tenant_id_tool_started_at_idx (kind), …_tenant_id_actor_id_started_at_idx (actor).
SELECT a.id, a.tenant_id, a.actor_id, a.approved_by, a.inputs, a.outputs, a.entity_refs, a.actor_kind,
       u.email AS actor_email, a.tool, a.driver, a.error, a.approval_required, a.approved_at, a.started_at,
       a.completed_at, a.status
FROM audit_events AS a
LEFT JOIN users AS u ON u.id = a.actor_id
