-- Enquiries (endpoints.md, Enquiries). The list query is built with pypika in voyagent/services/enquiries.py
-- because only the filters a request names may reach the SQL; everything else is here.

-- name: insert-enquiry^
-- Create one enquiry in the caller's tenant (POST /enquiries).
INSERT INTO enquiries (id, tenant_id, created_by_user_id, customer_name, customer_email, customer_phone, origin,
                       destination, depart_date, return_date, pax_count, budget_amount, budget_currency, status,
                       notes, session_id)
VALUES (:id, :tenant_id, :created_by_user_id, :customer_name, :customer_email, :customer_phone, :origin,
        :destination, :depart_date, :return_date, :pax_count, :budget_amount, :budget_currency,
        :status::enquiry_status, :notes, :session_id)
RETURNING id, tenant_id, created_by_user_id, customer_name, customer_email, customer_phone, origin, destination,
          depart_date, return_date, pax_count, budget_amount, budget_currency, status, notes,
          session_id, created_at, updated_at;

-- name: get-enquiry^
-- One enquiry of the tenant (GET /enquiries/{id}); another tenant's id finds nothing.
SELECT id, tenant_id, created_by_user_id, customer_name, customer_email, customer_phone, origin, destination,
       depart_date, return_date, pax_count, budget_amount, budget_currency, status, notes,
       session_id, created_at, updated_at
FROM enquiries
WHERE id = :id AND tenant_id = :tenant_id;

-- name: lock-enquiry^
-- One enquiry of the tenant, locked until the transaction ends (PATCH, promote-to-session).
SELECT id, tenant_id, created_by_user_id, customer_name, customer_email, customer_phone, origin, destination,
       depart_date, return_date, pax_count, budget_amount, budget_currency, status, notes,
       session_id, created_at, updated_at
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
RETURNING id, tenant_id, created_by_user_id, customer_name, customer_email, customer_phone, origin, destination,
          depart_date, return_date, pax_count, budget_amount, budget_currency, status, notes,
          session_id, created_at, updated_at;

-- name: link-enquiry-session^
-- Link a locked enquiry to its new chat session (POST /enquiries/{id}/promote-to-session).
UPDATE enquiries
SET session_id = :session_id, updated_at = now()
WHERE id = :id AND tenant_id = :tenant_id
RETURNING id, tenant_id, created_by_user_id, customer_name, customer_email, customer_phone, origin, destination,
          depart_date, return_date, pax_count, budget_amount, budget_currency, status, notes,
          session_id, created_at, updated_at;

-- name: count-enquiries-by-status$
-- Exact number of the tenant's enquiries in the given statuses, from the trigger-maintained counters
-- (GET /enquiries `total` when no filter other than status is given).
SELECT COALESCE(sum(n), 0)::bigint
FROM enquiry_counts
WHERE tenant_id = :tenant_id AND status = ANY(:statuses::enquiry_status[]);
