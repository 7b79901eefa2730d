-- name: insert-audit-event!
-- Append one audit event (data-model.md, audit_events); the caller owns the transaction.
INSERT INTO audit_events (id, tenant_id, actor_id, actor_kind, tool, driver, entity_refs, inputs, outputs,
                          error, approval_required, approved_by, approved_at, started_at, completed_at, status)
VALUES (:id, :tenant_id, :actor_id, :actor_kind::actor_kind, :tool, :driver, :entity_refs, :inputs, :outputs,
        :error, :approval_required, :approved_by, :approved_at, :started_at, :completed_at,
        :status::audit_status);

-- name: count-tenant-audit-events$
-- GET /audit `total` and the export cap without filters: the tenant's striped counter (migration 0002).
SELECT COALESCE(sum(n), 0)::bigint
FROM audit_event_counts
WHERE tenant_id = :tenant_id;
