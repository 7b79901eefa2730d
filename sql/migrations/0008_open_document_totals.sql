-- 0008: totals of the OPEN documents (data-model.md, Aging rules 1-2: invoices issued / partially_paid, bills
-- received / scheduled, outstanding = total - paid > 0) per party, per due date and per issue date, so the aging
-- reports (sql/reports.sql, get-aging) sum a few thousand total rows instead of every open document (45,000 in
-- bench/reports_bench.py: 50-100 ms a request; see docs/decisions.md, Issue 12 — aging aggregates).
--
-- A report over a period that holds most of the open documents takes the totals and subtracts the documents
-- issued outside the period; a narrow one reads its documents as before (0005's covering indexes). Buckets are
-- measured against today, so they cannot be stored: the due-date totals are bucketed when the report runs.
--
-- Statement-level triggers with transition tables keep the totals in the writing transaction (exact under MVCC):
-- every INSERT, UPDATE or DELETE of invoices / bills (COPY and the tenants ON DELETE CASCADE included) adds the
-- open contributions of its new rows and subtracts those of its old rows, grouped by key and applied in key
-- order (two writers cannot deadlock on them). A total row exists only while it counts a document: one that
-- reaches zero is deleted, so a deleted tenant's totals go with its documents (no foreign key needed) and paid
-- documents leave nothing behind; one that would go negative (only a missed change could do that) fails the
-- statement. TRUNCATE empties the kind's totals.
--
-- No stripes (unlike 0007): the app writes one document per transaction, and documents of one tenant are
-- created one at a time anyway (their numbers are taken in turn, billing.py); striping would multiply the rows
-- every report reads.

CREATE TABLE open_document_parties (
    tenant_id    uuid          NOT NULL,
    kind         text          NOT NULL,
    currency     char(3)       NOT NULL,
    party_name   varchar(255)  NOT NULL,
    documents    bigint        NOT NULL,
    outstanding  numeric       NOT NULL,
    -- get-aging (subtracting): every party of the tenant's open documents in the currency
    CONSTRAINT open_document_parties_pkey PRIMARY KEY (tenant_id, kind, currency, party_name),
    CONSTRAINT open_document_parties_kind_check CHECK (kind IN ('receivables', 'payables'))
);

CREATE TABLE open_document_due_days (
    tenant_id    uuid          NOT NULL,
    kind         text          NOT NULL,
    currency     char(3)       NOT NULL,
    due_date     date          NOT NULL,
    documents    bigint        NOT NULL,
    outstanding  numeric       NOT NULL,
    -- get-aging (subtracting): every due date of the tenant's open documents in the currency
    CONSTRAINT open_document_due_days_pkey PRIMARY KEY (tenant_id, kind, currency, due_date),
    CONSTRAINT open_document_due_days_kind_check CHECK (kind IN ('receivables', 'payables'))
);

CREATE TABLE open_document_issue_days (
    tenant_id    uuid          NOT NULL,
    kind         text          NOT NULL,
    currency     char(3)       NOT NULL,
    issue_date   date          NOT NULL,
    documents    bigint        NOT NULL,
    -- get-aging: how many open documents were issued inside the period and how many outside it
    CONSTRAINT open_document_issue_days_pkey PRIMARY KEY (tenant_id, kind, currency, issue_date),
    CONSTRAINT open_document_issue_days_kind_check CHECK (kind IN ('receivables', 'payables'))
);

-- One open document's share of the totals: +1 and its outstanding amount as it is now (new rows), -1 and minus
-- its outstanding amount as it was (old rows).
CREATE TYPE open_document_change AS (
    tenant_id    uuid,
    currency     char(3),
    party_name   varchar(255),
    issue_date   date,
    due_date     date,
    documents    bigint,
    outstanding  numeric
);

-- Adds the changes to the kind's totals: the tables in one order, the rows of each in key order, so two
-- writers cannot deadlock on them. A row that no longer counts any document is deleted (this transaction has
-- just updated it, so it holds its lock and no other writer added to it meanwhile). A row that would count a
-- negative number of documents or amount, or an amount without documents, can only come from a change these
-- triggers missed: the statement fails. (A CHECK cannot say it: INSERT ... ON CONFLICT checks the proposed
-- row, here the delta, before it finds the row it updates.)
CREATE FUNCTION open_document_totals_apply(report_kind text, changes open_document_change[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    broken  bigint;
    emptied bigint;
BEGIN
    WITH applied AS (
        INSERT INTO open_document_parties AS t (tenant_id, kind, currency, party_name, documents, outstanding)
        SELECT c.tenant_id, report_kind, c.currency, c.party_name, sum(c.documents), sum(c.outstanding)
        FROM unnest(changes) AS c
        GROUP BY c.tenant_id, c.currency, c.party_name
        HAVING sum(c.documents) <> 0 OR sum(c.outstanding) <> 0
        ORDER BY c.tenant_id, c.currency, c.party_name
        ON CONFLICT (tenant_id, kind, currency, party_name)
        DO UPDATE SET documents = t.documents + EXCLUDED.documents,
                      outstanding = t.outstanding + EXCLUDED.outstanding
        RETURNING t.documents, t.outstanding
    )
    SELECT count(*) FILTER (WHERE a.documents < 0 OR a.outstanding < 0 OR (a.documents = 0) <> (a.outstanding = 0)),
           count(*) FILTER (WHERE a.documents = 0)
    INTO broken, emptied
    FROM applied AS a;
    IF broken > 0 THEN
        RAISE EXCEPTION 'open_document_parties out of step (%)', report_kind;
    ELSIF emptied > 0 THEN
        DELETE FROM open_document_parties AS t
        USING (SELECT DISTINCT c.tenant_id, c.currency, c.party_name FROM unnest(changes) AS c) AS c
        WHERE t.tenant_id = c.tenant_id AND t.kind = report_kind AND t.currency = c.currency
          AND t.party_name = c.party_name AND t.documents = 0;
    END IF;

    WITH applied AS (
        INSERT INTO open_document_due_days AS t (tenant_id, kind, currency, due_date, documents, outstanding)
        SELECT c.tenant_id, report_kind, c.currency, c.due_date, sum(c.documents), sum(c.outstanding)
        FROM unnest(changes) AS c
        GROUP BY c.tenant_id, c.currency, c.due_date
        HAVING sum(c.documents) <> 0 OR sum(c.outstanding) <> 0
        ORDER BY c.tenant_id, c.currency, c.due_date
        ON CONFLICT (tenant_id, kind, currency, due_date)
        DO UPDATE SET documents = t.documents + EXCLUDED.documents,
                      outstanding = t.outstanding + EXCLUDED.outstanding
        RETURNING t.documents, t.outstanding
    )
    SELECT count(*) FILTER (WHERE a.documents < 0 OR a.outstanding < 0 OR (a.documents = 0) <> (a.outstanding = 0)),
           count(*) FILTER (WHERE a.documents = 0)
    INTO broken, emptied
    FROM applied AS a;
    IF broken > 0 THEN
        RAISE EXCEPTION 'open_document_due_days out of step (%)', report_kind;
    ELSIF emptied > 0 THEN
        DELETE FROM open_document_due_days AS t
        USING (SELECT DISTINCT c.tenant_id, c.currency, c.due_date FROM unnest(changes) AS c) AS c
        WHERE t.tenant_id = c.tenant_id AND t.kind = report_kind AND t.currency = c.currency
          AND t.due_date = c.due_date AND t.documents = 0;
    END IF;

    WITH applied AS (
        INSERT INTO open_document_issue_days AS t (tenant_id, kind, currency, issue_date, documents)
        SELECT c.tenant_id, report_kind, c.currency, c.issue_date, sum(c.documents)
        FROM unnest(changes) AS c
        GROUP BY c.tenant_id, c.currency, c.issue_date
        HAVING sum(c.documents) <> 0
        ORDER BY c.tenant_id, c.currency, c.issue_date
        ON CONFLICT (tenant_id, kind, currency, issue_date)
        DO UPDATE SET documents = t.documents + EXCLUDED.documents
        RETURNING t.documents
    )
    SELECT count(*) FILTER (WHERE a.documents < 0), count(*) FILTER (WHERE a.documents = 0)
    INTO broken, emptied
    FROM applied AS a;
    IF broken > 0 THEN
        RAISE EXCEPTION 'open_document_issue_days out of step (%)', report_kind;
    ELSIF emptied > 0 THEN
        DELETE FROM open_document_issue_days AS t
        USING (SELECT DISTINCT c.tenant_id, c.currency, c.issue_date FROM unnest(changes) AS c) AS c
        WHERE t.tenant_id = c.tenant_id AND t.kind = report_kind AND t.currency = c.currency
          AND t.issue_date = c.issue_date AND t.documents = 0;
    END IF;
END $$;

-- TG_ARGV: the report kind, then the document statuses that count as open.
CREATE FUNCTION open_document_totals_after_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    open_statuses text[] := TG_ARGV[1:];
    changes       open_document_change[] := '{}';
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        changes := ARRAY(SELECT ROW(n.tenant_id, n.currency, n.party_name, n.issue_date, n.due_date, 1,
                                    n.total_amount - n.amount_paid)::open_document_change
                         FROM new_rows AS n
                         WHERE n.status::text = ANY (open_statuses) AND n.total_amount > n.amount_paid);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        changes := changes || ARRAY(SELECT ROW(o.tenant_id, o.currency, o.party_name, o.issue_date, o.due_date, -1,
                                               o.amount_paid - o.total_amount)::open_document_change
                                    FROM old_rows AS o
                                    WHERE o.status::text = ANY (open_statuses) AND o.total_amount > o.amount_paid);
    END IF;
    IF cardinality(changes) > 0 THEN
        PERFORM open_document_totals_apply(TG_ARGV[0], changes);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION open_document_totals_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM open_document_parties WHERE kind = TG_ARGV[0];
    DELETE FROM open_document_due_days WHERE kind = TG_ARGV[0];
    DELETE FROM open_document_issue_days WHERE kind = TG_ARGV[0];
    RETURN NULL;
END $$;

CREATE TRIGGER invoices_open_totals_insert AFTER INSERT ON invoices REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION open_document_totals_after_change('receivables', 'issued', 'partially_paid');
CREATE TRIGGER invoices_open_totals_update AFTER UPDATE ON invoices
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION open_document_totals_after_change('receivables', 'issued', 'partially_paid');
CREATE TRIGGER invoices_open_totals_delete AFTER DELETE ON invoices REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION open_document_totals_after_change('receivables', 'issued', 'partially_paid');
CREATE TRIGGER invoices_open_totals_truncate AFTER TRUNCATE ON invoices
    FOR EACH STATEMENT EXECUTE FUNCTION open_document_totals_after_truncate('receivables');

CREATE TRIGGER bills_open_totals_insert AFTER INSERT ON bills REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION open_document_totals_after_change('payables', 'received', 'scheduled');
CREATE TRIGGER bills_open_totals_update AFTER UPDATE ON bills
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION open_document_totals_after_change('payables', 'received', 'scheduled');
CREATE TRIGGER bills_open_totals_delete AFTER DELETE ON bills REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION open_document_totals_after_change('payables', 'received', 'scheduled');
CREATE TRIGGER bills_open_totals_truncate AFTER TRUNCATE ON bills
    FOR EACH STATEMENT EXECUTE FUNCTION open_document_totals_after_truncate('payables');

-- Documents written before this migration.
SELECT open_document_totals_apply('receivables', ARRAY(
    SELECT ROW(i.tenant_id, i.currency, i.party_name, i.issue_date, i.due_date, 1,
               i.total_amount - i.amount_paid)::open_document_change
    FROM invoices AS i
    WHERE i.status IN ('issued', 'partially_paid') AND i.total_amount > i.amount_paid));
SELECT open_document_totals_apply('payables', ARRAY(
    SELECT ROW(b.tenant_id, b.currency, b.party_name, b.issue_date, b.due_date, 1,
               b.total_amount - b.amount_paid)::open_document_change
    FROM bills AS b
    WHERE b.status IN ('received', 'scheduled') AND b.total_amount > b.amount_paid));
