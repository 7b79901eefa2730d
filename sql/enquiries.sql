-- Enquiries (endpoints.md, Enquiries). The list's SELECT is sql/lists/enquiries.sql, completed by
-- voyagent/listing.py with only the filters a request names (declared in voyagent/services/enquiries.py);
-- everything else is here. Every query returns the EnquiryResponse columns, UUIDs as text (the row is the
-- response object as it is).

-- name: insert-enquiry^
-- Create one enquiry in the caller's tenant (POST /enquiries).
INSERT INTO enquiries (id, tenant_id, created_by_user_id, customer_name, customer_email, customer_phone, origin,
                       destination, depart_date, return_date, pax_count, budget_amount, budget_currency, status,
                       notes, session_id)
VALUES (:id, :tenant_id, :created_by_user_id, :customer_name, :customer_email, :customer_phone, :origin,
        :destination, :depart_date, :return_date, :pax_count, :budget_amount, :budget_currency,
        :status::enquiry_status, :notes, :session_id)
RETURNING id::text AS id, tenant_id::text AS tenant_id, created_by_user_id::text AS created_by_user_id,
          customer_name, customer_email, customer_phone, origin, destination, depart_date, return_date, pax_count,
          budget_amount, budget_currency, status, notes, session_id::text AS session_id, created_at, updated_at;

-- name: get-enquiry^
-- One enquiry of the tenant (GET /enquiries/{id}); another tenant's id finds nothing.
SELECT id::text AS id, tenant_id::text AS tenant_id, created_by_user_id::text AS created_by_user_id,
       customer_name, customer_email, customer_phone, origin, destination, depart_date, return_date, pax_count,
       budget_amount, budget_currency, status, notes, session_id::text AS session_id, created_at, updated_at
FROM enquiries
WHERE id = :id AND tenant_id = :tenant_id;

-- name: lock-enquiry^
-- One enquiry of the tenant, locked until the transaction ends (PATCH, promote-to-session).
SELECT id::text AS id, tenant_id::text AS tenant_id, created_by_user_id::text AS created_by_user_id,
       customer_name, customer_email, customer_phone, origin, destination, depart_date, return_date, pax_count,
       budget_amount, budget_currency, status, notes, session_id::text AS session_id, created_at, updated_at
FROM enquiries
WHERE id = :id AND tenant_id = :tenant_id
FOR UPDATE;

-- name: update-enquiry^
-- Write every mutable column of a locked enquiry (the merged PATCH values) and bump updated_at.
UPDATE enquiries
SET customer_name = :customer_name, customer_email = :customer_email, customer_phone = :customer_phone,
    origin = :origin, destination = :destination, depart_date = :depart_date, return_date = :return_date,
    pax_count = :pax_count, budget_amount = :budget_amount, budget_currency = :budget_currency,
    status = :status::enquiry_status, notes = :notes, session_id = :session_id, updated_at = now()
WHERE id = :id AND tenant_id = :tenant_id
RETURNING id::text AS id, tenant_id::text AS tenant_id, created_by_user_id::text AS created_by_user_id,
          customer_name, customer_email, customer_phone, origin, destination, depart_date, return_date, pax_count,
          budget_amount, budget_currency, status, notes, session_id::text AS session_id, created_at, updated_at;

-- name: link-enquiry-session^
-- Link a locked enquiry to its new chat session (POST /enquiries/{id}/promote-to-session).
UPDATE enquiries
SET session_id = :session_id, updated_at = now()
WHERE id = :id AND tenant_id = :tenant_id
RETURNING id::text AS id, tenant_id::text AS tenant_id, created_by_user_id::text AS created_by_user_id,
          customer_name, customer_email, customer_phone, origin, destination, depart_date, return_date, pax_count,
          budget_amount, budget_currency, status, notes, session_id::text AS session_id, created_at, updated_at;

-- name: get-enquiry-totals^
-- From the trigger-maintained counters: the exact number of the tenant's enquiries in :statuses, and the
-- tenant's change counter (a cached filtered total is reused only while it is unchanged).
SELECT COALESCE(sum(n) FILTER (WHERE status = ANY(:statuses::enquiry_status[])), 0)::bigint AS total,
       COALESCE(sum(version), 0)::bigint AS version
FROM enquiry_counts
WHERE tenant_id = :tenant_id;
