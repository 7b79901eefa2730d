-- 0002: exact per-tenant audit event counts, so GET /audit and the export cap answer an unfiltered `total`
-- without counting a large tenant's log on every request (README, Pagination: `total` must be exact).
--
-- Every audited request inserts into audit_events, so one counter row per tenant would serialise a tenant's
-- writes on that row's lock until commit. The count is therefore striped: a statement adds its rows to the
-- stripe of its backend (pg_backend_pid() % 16), and the total is SUM(n) over the tenant's stripes. The
-- triggers run in the inserting transaction, so the sum is exact under MVCC like count(*) would be.
-- Filtered totals are still counted (services/audit_log.py).

CREATE TABLE audit_event_counts (
    tenant_id  uuid     NOT NULL,
    stripe     smallint NOT NULL,
    n          bigint   NOT NULL,
    -- GET /audit `total` without filters: SUM(n) over one tenant's stripes (one index range)
    CONSTRAINT audit_event_counts_pkey PRIMARY KEY (tenant_id, stripe),
    CONSTRAINT audit_event_counts_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT audit_event_counts_stripe_check CHECK (stripe BETWEEN 0 AND 15)
);

-- One statement-level trigger per INSERT statement (a COPY of a million rows aggregates once).
CREATE FUNCTION audit_event_counts_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_event_counts (tenant_id, stripe, n)
    SELECT tenant_id, (pg_backend_pid() % 16)::smallint, count(*) FROM inserted_rows GROUP BY tenant_id
    ORDER BY tenant_id
    ON CONFLICT (tenant_id, stripe) DO UPDATE SET n = audit_event_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;

-- Audit rows are never deleted by the application; a manual DELETE (or a tenant's cascade) keeps the sum exact.
CREATE FUNCTION audit_event_counts_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_event_counts (tenant_id, stripe, n)
    SELECT d.tenant_id, (pg_backend_pid() % 16)::smallint, -count(*) FROM deleted_rows AS d
    WHERE EXISTS (SELECT 1 FROM tenants AS t WHERE t.id = d.tenant_id)
    GROUP BY d.tenant_id ORDER BY d.tenant_id
    ON CONFLICT (tenant_id, stripe) DO UPDATE SET n = audit_event_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE FUNCTION audit_event_counts_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM audit_event_counts;
    RETURN NULL;
END $$;

CREATE TRIGGER audit_event_counts_insert AFTER INSERT ON audit_events
    REFERENCING NEW TABLE AS inserted_rows FOR EACH STATEMENT EXECUTE FUNCTION audit_event_counts_after_insert();
CREATE TRIGGER audit_event_counts_delete AFTER DELETE ON audit_events
    REFERENCING OLD TABLE AS deleted_rows FOR EACH STATEMENT EXECUTE FUNCTION audit_event_counts_after_delete();
CREATE TRIGGER audit_event_counts_truncate AFTER TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_counts_after_truncate();

-- Events written before this migration.
INSERT INTO audit_event_counts (tenant_id, stripe, n)
SELECT tenant_id, 0, count(*) FROM audit_events GROUP BY tenant_id;
