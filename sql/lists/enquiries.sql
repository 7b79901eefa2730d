-- GET /enquiries (endpoints.md, Enquiries): the EnquiryResponse columns of a page, UUIDs as text (a row is the
-- response object as it is). voyagent/listing.py completes it, for example for ?destination=…&limit=50:
--   WHERE e.tenant_id = $1 AND e.destination ILIKE $2 ESCAPE '\'      (filters: services/enquiries.py)
--   ORDER BY e.created_at DESC, e.id DESC LIMIT $3                       (51 rows: one more than the page)
-- a cursor adds AND (e.created_at, e.id) < ($n, $m); an offset page is a deferred join (the skip on the index):
--   WHERE e.id = ANY(ARRAY(SELECT e.id FROM enquiries e WHERE … ORDER BY … LIMIT $n OFFSET $m)) ORDER BY …
-- Indexes (schema.sql): enquiries_tenant_id_created_at_id_idx (order, cursor, offset skip, created range),
-- …_tenant_id_status_created_at_id_idx (status), …_tenant_id_depart_date_idx, the five …_trgm_idx (substrings).
SELECT e.id::text AS id, e.tenant_id::text AS tenant_id, e.created_by_user_id::text AS created_by_user_id,
       e.customer_name, e.customer_email, e.customer_phone, e.origin, e.destination, e.depart_date, e.return_date,
       e.pax_count, e.budget_amount, e.budget_currency, e.status, e.notes, e.session_id::text AS session_id,
       e.created_at, e.updated_at
FROM enquiries AS e
