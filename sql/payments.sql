-- Payments against invoices and bills. The API has no payment endpoint (data-model.md: statuses other than
-- issued / received "exist for data entered by other means"); `voyagent demo` enters its payments here.

-- name: lock-open-invoice^
-- An invoice that can still be paid, locked for its payment.
SELECT id, number, total_amount, amount_paid, currency, status::text AS status
FROM invoices
WHERE id = :id AND tenant_id = :tenant_id AND status IN ('issued', 'partially_paid')
FOR UPDATE;

-- name: lock-open-bill^
-- A bill that can still be paid, locked for its payment.
SELECT id, number, total_amount, amount_paid, currency, status::text AS status
FROM bills
WHERE id = :id AND tenant_id = :tenant_id AND status IN ('received', 'scheduled')
FOR UPDATE;

-- name: set-invoice-paid!
UPDATE invoices
SET amount_paid = :amount_paid, status = :status::invoice_status, updated_at = :now
WHERE id = :id AND tenant_id = :tenant_id;

-- name: set-bill-paid!
UPDATE bills
SET amount_paid = :amount_paid, status = :status::bill_status, updated_at = :now
WHERE id = :id AND tenant_id = :tenant_id;
