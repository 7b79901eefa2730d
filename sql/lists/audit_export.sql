-- GET /audit/export.csv: the events GET /audit lists (same filters and order, no paging), as only what the CSV
-- needs, as text PostgreSQL renders cheaply in its own process: jsonb is spliced into payload_json rather than
-- decoded and encoded again, and timestamps are to_json UTC text (no datetime is ever built).
-- services/audit_log.py csv_records unpacks the rows by position: keep this column order.
SELECT a.actor_id::text AS actor_id, a.approved_by::text AS approved_by, a.inputs::text AS inputs,
       a.outputs::text AS outputs, a.entity_refs::text AS entity_refs, a.actor_kind, u.email AS actor_email,
       a.tool, a.driver, a.error, a.approval_required,
       to_json(a.approved_at AT TIME ZONE 'UTC')::text AS approved_at,
       to_json(a.started_at AT TIME ZONE 'UTC')::text AS started_at,
       to_json(a.completed_at AT TIME ZONE 'UTC')::text AS completed_at, a.status
FROM audit_events AS a
LEFT JOIN users AS u ON u.id = a.actor_id
