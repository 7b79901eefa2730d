-- name: demo-date-enquiries!
-- voyagent demo: give freshly created enquiries their place in the demo's year (the API stamps now()).
UPDATE enquiries AS e
SET created_at = d.created_at,
    updated_at = d.created_at
FROM unnest(:ids::uuid[], :created_at::timestamptz[]) AS d (id, created_at)
WHERE e.id = d.id
  AND e.tenant_id = :tenant_id;
