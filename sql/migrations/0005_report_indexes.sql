-- 0005: covering indexes for the aging reports (endpoints.md, Reports), so each reads only index pages of the
-- tenant's open documents (index-only scans once the visibility map is set). The trial balance reads the
-- daily totals of migration 0007.
--
-- The data model's (tenant_id, status, issue_date) indexes on invoices and bills stay: they are the documented
-- ones. These hold only open documents (partial), put the report currency in the key (a tenant's documents in
-- other currencies are skipped) and carry every column the aging statement reads.

-- get-receivables-aging: open invoices (issued / partially_paid) of one currency with issue_date in [from, to]
CREATE INDEX invoices_aging_idx ON invoices (tenant_id, currency, issue_date)
    INCLUDE (due_date, total_amount, amount_paid, party_name)
    WHERE status IN ('issued', 'partially_paid');

-- get-payables-aging: open bills (received / scheduled) of one currency with issue_date in [from, to]
CREATE INDEX bills_aging_idx ON bills (tenant_id, currency, issue_date)
    INCLUDE (due_date, total_amount, amount_paid, party_name)
    WHERE status IN ('received', 'scheduled');
