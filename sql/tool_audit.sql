-- The audit row of one agent tool call (data-model.md, audit_events): written `started` by
-- insert-audit-event, then moved to its terminal status in the same transaction as the tool's effects.

-- name: finish-audit-event!
-- started → succeeded / failed: only the columns the data model lets change.
UPDATE audit_events
SET status = :status::audit_status, outputs = :outputs, error = :error, completed_at = :completed_at
WHERE id = :id AND tenant_id = :tenant_id AND status = 'started';
