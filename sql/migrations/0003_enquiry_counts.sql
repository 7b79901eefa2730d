-- 0003: exact enquiry counts per (tenant, status) and a per-tenant change counter, so GET /enquiries answers
-- `total` without counting a large tenant's rows on every request (README, Pagination: `total` must be exact).
--
--   * a total with no filter, or with a status filter only, is SUM(n) over the tenant's rows of that status;
--   * a total with other filters is counted, and may be reused while SUM(version) over all the tenant's rows
--     is unchanged (voyagent/services/enquiries.py, TotalsCache): version grows in the transaction of every
--     insert, delete, or update of a column a list filter reads.
--
-- The triggers run in the writing transaction, so the sums are exact under MVCC like count(*) would be. As
-- in 0002, the counters are striped by backend (pg_backend_pid() % 16) so concurrent creates in one tenant do
-- not queue on one row lock until commit; a stripe's n may go negative (a row counted in another stripe
-- changed status here), only the sum means anything. A statement touches only its own stripe's rows and
-- always in (tenant_id, status) order, so two transactions cannot deadlock on them.

CREATE TABLE enquiry_counts (
    tenant_id  uuid           NOT NULL,
    status     enquiry_status NOT NULL,
    stripe     smallint       NOT NULL,
    n          bigint         NOT NULL,
    version    bigint         NOT NULL DEFAULT 0,
    -- GET /enquiries `total` (no filter / status only) and the change counter: one index range per tenant
    CONSTRAINT enquiry_counts_pkey PRIMARY KEY (tenant_id, status, stripe),
    CONSTRAINT enquiry_counts_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT enquiry_counts_stripe_check CHECK (stripe BETWEEN 0 AND 15)
);

-- One statement-level trigger per INSERT statement (a COPY of a million rows aggregates once).
CREATE FUNCTION enquiry_counts_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO enquiry_counts (tenant_id, status, stripe, n, version)
    SELECT tenant_id, status, (pg_backend_pid() % 16)::smallint, count(*), 1 FROM inserted_rows
    GROUP BY tenant_id, status ORDER BY tenant_id, status
    ON CONFLICT (tenant_id, status, stripe) DO UPDATE
    SET n = enquiry_counts.n + EXCLUDED.n, version = enquiry_counts.version + 1;
    RETURN NULL;
END $$;

-- An update of a column a list filter reads: a status change moves one unit from the old status to the new
-- one, any other such change only bumps the version. Updates that touch nothing a filter reads (notes,
-- budget, session link, updated_at) are skipped by the trigger's WHEN clause.
CREATE FUNCTION enquiry_counts_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO enquiry_counts (tenant_id, status, stripe, n, version)
    SELECT d.tenant_id, d.status, (pg_backend_pid() % 16)::smallint, sum(d.delta), 1
    FROM (VALUES (OLD.tenant_id, OLD.status, -1::bigint), (NEW.tenant_id, NEW.status, 1::bigint))
         AS d (tenant_id, status, delta)
    GROUP BY d.tenant_id, d.status ORDER BY d.tenant_id, d.status
    ON CONFLICT (tenant_id, status, stripe) DO UPDATE
    SET n = enquiry_counts.n + EXCLUDED.n, version = enquiry_counts.version + 1;
    RETURN NULL;
END $$;

-- Enquiries are never deleted by the API; a manual DELETE (or a tenant's cascade, which removes the counters
-- too: no counter row is written for a tenant that is gone) keeps the sums exact.
CREATE FUNCTION enquiry_counts_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO enquiry_counts (tenant_id, status, stripe, n, version)
    SELECT d.tenant_id, d.status, (pg_backend_pid() % 16)::smallint, -count(*), 1 FROM deleted_rows AS d
    WHERE EXISTS (SELECT 1 FROM tenants AS t WHERE t.id = d.tenant_id)
    GROUP BY d.tenant_id, d.status ORDER BY d.tenant_id, d.status
    ON CONFLICT (tenant_id, status, stripe) DO UPDATE
    SET n = enquiry_counts.n + EXCLUDED.n, version = enquiry_counts.version + 1;
    RETURN NULL;
END $$;

-- Versions never go back (a cached total is keyed by one), so a TRUNCATE zeroes the counts and bumps them.
CREATE FUNCTION enquiry_counts_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE enquiry_counts SET n = 0, version = version + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER enquiry_counts_insert AFTER INSERT ON enquiries
    REFERENCING NEW TABLE AS inserted_rows FOR EACH STATEMENT EXECUTE FUNCTION enquiry_counts_after_insert();
CREATE TRIGGER enquiry_counts_update AFTER UPDATE ON enquiries
    FOR EACH ROW WHEN ((OLD.tenant_id, OLD.status, OLD.customer_name, OLD.customer_email, OLD.customer_phone,
                        OLD.origin, OLD.destination, OLD.depart_date, OLD.created_at)
                       IS DISTINCT FROM
                       (NEW.tenant_id, NEW.status, NEW.customer_name, NEW.customer_email, NEW.customer_phone,
                        NEW.origin, NEW.destination, NEW.depart_date, NEW.created_at))
    EXECUTE FUNCTION enquiry_counts_after_update();
CREATE TRIGGER enquiry_counts_delete AFTER DELETE ON enquiries
    REFERENCING OLD TABLE AS deleted_rows FOR EACH STATEMENT EXECUTE FUNCTION enquiry_counts_after_delete();
CREATE TRIGGER enquiry_counts_truncate AFTER TRUNCATE ON enquiries
    FOR EACH STATEMENT EXECUTE FUNCTION enquiry_counts_after_truncate();

-- Enquiries written before this migration.
INSERT INTO enquiry_counts (tenant_id, status, stripe, n, version)
SELECT tenant_id, status, 0, count(*), 1 FROM enquiries GROUP BY tenant_id, status;
