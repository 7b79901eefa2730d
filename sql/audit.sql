-- name: insert-audit-event!
-- Append one audit event (data-model.md, audit_events); the caller owns the transaction.
INSERT INTO audit_events (id, tenant_id, actor_id, actor_kind, tool, driver, entity_refs, inputs, outputs,
                          error, approval_required, approved_by, approved_at, started_at, completed_at, status)
VALUES (:id, :tenant_id, :actor_id, :actor_kind::actor_kind, :tool, :driver, :entity_refs, :inputs, :outputs,
        :error, :approval_required, :approved_by, :approved_at, :started_at, :completed_at,
        :status::audit_status);

-- GET /audit and /audit/export.csv filter freely (actor, kinds, days, keyset cursor): their SELECTs are
-- sql/lists/audit.sql and sql/lists/audit_export.sql, completed by voyagent/listing.py with the filters declared
-- in voyagent/services/audit_log.py. Indexes: audit_events_tenant_id_started_at_id_idx (order, cursor, offset
-- skip, days), ..._tool_started_at_idx (kind), ..._actor_id_started_at_idx (actor) in schema.sql.

-- name: count-tenant-audit-events$
-- GET /audit `total` and the export cap without filters: the tenant's striped counter (migration 0002).
SELECT COALESCE(sum(n), 0)::bigint
FROM audit_event_counts
WHERE tenant_id = :tenant_id;
