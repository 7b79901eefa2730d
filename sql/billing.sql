-- Documents the agent creates (chat-and-agent.md §9.4–§9.5; data-model.md, invoices, bills and Document
-- numbering). A number is one more than the tenant's highest of its shape; a concurrent transaction that took
-- the same number makes the insert return nothing (ON CONFLICT on the number), and the caller counts again.

-- name: next-bill-sequence$
-- The next <NNNN> of BILL-<T8>-<NNNN> in the tenant (a scan of the tenant's bills_tenant_id_number_key range).
SELECT coalesce(max(substr(b.number, length(:prefix) + 1)::numeric), 0) + 1
FROM bills AS b
WHERE b.tenant_id = :tenant_id AND b.number LIKE :prefix || '%' AND b.number ~ ('^' || :prefix || '[0-9]{4,}$');

-- name: insert-bill^
-- book_offer's bill (status received); nothing when the number was taken meanwhile.
INSERT INTO bills (id, tenant_id, number, party_name, party_reference, vendor_reference, issue_date, due_date,
                   total_amount, currency, amount_paid, status)
VALUES (:id, :tenant_id, :number, :party_name, :party_reference, :vendor_reference, :issue_date, :due_date,
        :total_amount, :currency, 0, 'received')
ON CONFLICT (tenant_id, number) DO NOTHING
RETURNING id, number, party_name, total_amount, currency, issue_date, due_date, status::text AS status;

-- name: next-invoice-sequence$
-- The next <NNNN> of INV-<T8>-<NNNN> in the tenant (a scan of the tenant's invoices_tenant_id_number_key range).
SELECT coalesce(max(substr(i.number, length(:prefix) + 1)::numeric), 0) + 1
FROM invoices AS i
WHERE i.tenant_id = :tenant_id AND i.number LIKE :prefix || '%' AND i.number ~ ('^' || :prefix || '[0-9]{4,}$');

-- name: insert-invoice^
-- issue_invoice's invoice (status issued); nothing when the number was taken meanwhile.
INSERT INTO invoices (id, tenant_id, number, party_name, party_reference, issue_date, due_date, total_amount,
                      currency, amount_paid, status)
VALUES (:id, :tenant_id, :number, :party_name, :party_reference, :issue_date, :due_date, :total_amount, :currency,
        0, 'issued')
ON CONFLICT (tenant_id, number) DO NOTHING
RETURNING id, number, party_name, total_amount, currency, issue_date, due_date, status::text AS status;
