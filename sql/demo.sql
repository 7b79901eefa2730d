-- name: demo-date-enquiries!
-- voyagent demo: give freshly created enquiries their place in the demo's year (the API stamps now()).
UPDATE enquiries AS e
SET created_at = d.created_at,
    updated_at = d.created_at
FROM unnest(:ids::uuid[], :created_at::timestamptz[]) AS d (id, created_at)
WHERE e.id = d.id
  AND e.tenant_id = :tenant_id;

-- name: demo-date-session!
-- voyagent demo: a played session takes the dates of its simulated time (the API stamps now()); its messages
-- follow one another from its start.
WITH dated AS (
    UPDATE sessions SET created_at = :started_at, updated_at = :ended_at
    WHERE id = :session_id AND tenant_id = :tenant_id
    RETURNING id
)
UPDATE messages AS m
SET created_at = least(:started_at + m.sequence * interval '3 minutes', :ended_at)
FROM dated
WHERE m.session_id = dated.id;

-- name: demo-open-documents
-- voyagent demo: the tenant's unpaid invoices and bills, oldest first, for its payments.
SELECT 'invoice' AS kind, id, issue_date, due_date, total_amount
FROM invoices WHERE tenant_id = :tenant_id AND status = 'issued'
UNION ALL
SELECT 'bill' AS kind, id, issue_date, due_date, total_amount
FROM bills WHERE tenant_id = :tenant_id AND status = 'received'
ORDER BY issue_date, kind, id;
