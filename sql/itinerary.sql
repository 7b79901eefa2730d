-- Itinerary of a chat session (chat-and-agent.md §7; data-model.md, itinerary_items). GET /reports/itinerary
-- reads both queries in one read-only snapshot; the chat tools (get_itinerary, issue_invoice) read the items too.

-- name: get-itinerary-session^
-- The session of the tenant with the tenant's default_currency (NULL when its settings row is missing);
-- sessions_pkey, then tenant_settings_pkey.
SELECT s.id, s.tenant_id, ts.default_currency
FROM sessions AS s
LEFT JOIN tenant_settings AS ts ON ts.tenant_id = s.tenant_id
WHERE s.id = :id AND s.tenant_id = :tenant_id;

-- name: list-itinerary-items
-- The session's items in creation order (ties by the time-ordered id); index
-- itinerary_items_session_id_created_at_id_idx gives the order without a sort.
SELECT i.id, i.kind::text AS kind, i.offer_id, i.status::text AS status, i.reference, i.data, i.price_amount,
       i.price_currency, i.created_at
FROM itinerary_items AS i
WHERE i.session_id = :session_id AND i.tenant_id = :tenant_id
ORDER BY i.created_at, i.id;
