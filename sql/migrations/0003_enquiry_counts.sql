-- 0003: exact per-(tenant, status) enquiry counts, so GET /enquiries can answer `total` without counting
-- a large tenant's rows on every request (README, Pagination: `total` must be exact).
--
-- The counts are maintained by triggers in the same transaction as the rows they count, so they are
-- exact under concurrency: an insert adds to its (tenant, status) row, a status change moves one unit
-- between two rows, a delete subtracts. Counter rows are always locked in (tenant_id, status) order,
-- so two transactions touching the same tenant cannot deadlock on them.

CREATE TABLE enquiry_counts (
    tenant_id  uuid           NOT NULL,
    status     enquiry_status NOT NULL,
    n          bigint         NOT NULL,
    -- GET /enquiries `total` with no filter or a status filter only: SUM(n) of the tenant's rows
    CONSTRAINT enquiry_counts_pkey PRIMARY KEY (tenant_id, status),
    CONSTRAINT enquiry_counts_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT enquiry_counts_n_check CHECK (n >= 0)
);

-- One statement-level trigger per INSERT statement (a COPY of a million rows aggregates once).
CREATE FUNCTION enquiry_counts_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO enquiry_counts (tenant_id, status, n)
    SELECT tenant_id, status, count(*) FROM inserted_rows GROUP BY tenant_id, status ORDER BY tenant_id, status
    ON CONFLICT (tenant_id, status) DO UPDATE SET n = enquiry_counts.n + EXCLUDED.n;
    RETURN NULL;
END
$$;

CREATE TRIGGER enquiries_counts_insert
    AFTER INSERT ON enquiries REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION enquiry_counts_after_insert();

-- Only a status change moves counts (tenant_id never changes); the WHEN clause keeps every other update
-- (PATCH of other fields, session links) free of trigger work. The decrement is a plain UPDATE (the row
-- exists: it counts OLD), the increment an upsert; they run in status order to keep the lock order.
CREATE FUNCTION enquiry_counts_after_status_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (OLD.tenant_id, OLD.status) < (NEW.tenant_id, NEW.status) THEN
        UPDATE enquiry_counts SET n = n - 1 WHERE tenant_id = OLD.tenant_id AND status = OLD.status;
    END IF;
    INSERT INTO enquiry_counts (tenant_id, status, n) VALUES (NEW.tenant_id, NEW.status, 1)
    ON CONFLICT (tenant_id, status) DO UPDATE SET n = enquiry_counts.n + 1;
    IF (OLD.tenant_id, OLD.status) > (NEW.tenant_id, NEW.status) THEN
        UPDATE enquiry_counts SET n = n - 1 WHERE tenant_id = OLD.tenant_id AND status = OLD.status;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER enquiries_counts_status_change
    AFTER UPDATE OF status, tenant_id ON enquiries
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id)
    EXECUTE FUNCTION enquiry_counts_after_status_change();

-- Enquiries are never deleted by the API; a tenant deletion cascades to both tables. Only UPDATE here:
-- inserting a counter row for a tenant being deleted would violate the foreign key.
CREATE FUNCTION enquiry_counts_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE enquiry_counts AS c SET n = c.n - d.n
    FROM (SELECT tenant_id, status, count(*) AS n FROM deleted_rows GROUP BY tenant_id, status) AS d
    WHERE c.tenant_id = d.tenant_id AND c.status = d.status;
    RETURN NULL;
END
$$;

CREATE TRIGGER enquiries_counts_delete
    AFTER DELETE ON enquiries REFERENCING OLD TABLE AS deleted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION enquiry_counts_after_delete();

-- Rows that already exist when this migration runs.
INSERT INTO enquiry_counts (tenant_id, status, n)
SELECT tenant_id, status, count(*) FROM enquiries GROUP BY tenant_id, status;
