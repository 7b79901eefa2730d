-- Writes of the agent's itinerary tools (chat-and-agent.md §9.2–§9.5; data-model.md, itinerary_items). The
-- session's item of an offer is found through itinerary_items_session_id_offer_id_key; lists in creation order
-- through itinerary_items_session_id_created_at_id_idx.

-- name: insert-offer-item^
-- add_to_itinerary: a flight or hotel item, status planned; nothing when the offer is already in the session.
INSERT INTO itinerary_items (id, tenant_id, session_id, kind, offer_id, status, data, price_amount, price_currency)
VALUES (:id, :tenant_id, :session_id, :kind::itinerary_item_kind, :offer_id, 'planned', :data, :price_amount,
        :price_currency)
ON CONFLICT (session_id, offer_id) DO NOTHING
RETURNING id, kind::text AS kind, offer_id, status::text AS status, reference, data, price_amount, price_currency,
          invoice_id, bill_id;

-- name: insert-passenger-item^
-- add_passenger: a passenger item (no offer, no status, no price).
INSERT INTO itinerary_items (id, tenant_id, session_id, kind, data)
VALUES (:id, :tenant_id, :session_id, 'passenger', :data)
RETURNING id, data;

-- name: get-session-offer-item^
-- The session's flight or hotel item of one offer, locked for the hold/book/invoice that checks it.
SELECT i.id, i.kind::text AS kind, i.offer_id, i.status::text AS status, i.reference, i.data, i.price_amount,
       i.price_currency, i.invoice_id, i.bill_id
FROM itinerary_items AS i
WHERE i.session_id = :session_id AND i.tenant_id = :tenant_id AND i.offer_id = :offer_id
FOR UPDATE;

-- name: update-item-status^
-- hold_offer / book_offer: the new status, the reference kept once set, the bill of a booking.
UPDATE itinerary_items
SET status = :status::itinerary_item_status, reference = coalesce(reference, :reference),
    bill_id = coalesce(:bill_id, bill_id), updated_at = now()
WHERE id = :id AND tenant_id = :tenant_id
RETURNING id, kind::text AS kind, offer_id, status::text AS status, reference, data, price_amount, price_currency,
          invoice_id, bill_id;

-- name: list-invoiceable-items
-- issue_invoice: of the given offers, the session's booked items not yet invoiced, in creation order, locked.
SELECT i.id, i.offer_id, i.price_amount, i.price_currency
FROM itinerary_items AS i
WHERE i.session_id = :session_id AND i.tenant_id = :tenant_id AND i.offer_id = any(:offer_ids::text[])
  AND i.status = 'booked' AND i.invoice_id IS NULL
ORDER BY i.created_at, i.id
FOR UPDATE;

-- name: set-items-invoice!
-- issue_invoice: the invoiced items point at their invoice.
UPDATE itinerary_items
SET invoice_id = :invoice_id, updated_at = now()
WHERE tenant_id = :tenant_id AND id = any(:ids::uuid[]);

-- name: list-uninvoiced-booked-offer-ids
-- The offline agent's issue_invoice input (§9.5): booked flights/hotels without invoice, in creation order.
SELECT i.offer_id
FROM itinerary_items AS i
WHERE i.session_id = :session_id AND i.tenant_id = :tenant_id AND i.kind IN ('flight', 'hotel')
  AND i.status = 'booked' AND i.invoice_id IS NULL
ORDER BY i.created_at, i.id;

-- name: get-invoice-customer-name$
-- §9.5's customer when the command names none: the earliest enquiry linked to the session (index
-- enquiries_session_id_created_at_id_idx), else the session's first passenger; NULL when neither exists.
SELECT coalesce(
    (SELECT e.customer_name FROM enquiries AS e
     WHERE e.session_id = :session_id AND e.tenant_id = :tenant_id
     ORDER BY e.created_at, e.id LIMIT 1),
    (SELECT i.data ->> 'full_name' FROM itinerary_items AS i
     WHERE i.session_id = :session_id AND i.tenant_id = :tenant_id AND i.kind = 'passenger'
     ORDER BY i.created_at, i.id LIMIT 1));
