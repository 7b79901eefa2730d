-- 0003: exact per-(tenant, status) enquiry counts and a change counter, so GET /enquiries can answer `total`
-- without counting a large tenant's rows on every request (README, Pagination: `total` must be exact).
--
-- `n` is the number of the tenant's enquiries in that status; `version` grows whenever one of them is
-- created, deleted, or changes a column a list filter reads. Both are maintained by triggers in the same
-- transaction as the rows, so they are exact under concurrency:
--   * a total with no filter, or a status filter only, is SUM(n) (GET /enquiries);
--   * a total with other filters is counted once and may be reused while SUM(version) over the tenant's
--     rows is unchanged (voyagent/services/enquiries.py, TotalsCache).
-- Counter rows are always locked in (tenant_id, status) order, so two transactions touching the same tenant
-- cannot deadlock on them.

CREATE TABLE enquiry_counts (
    tenant_id  uuid           NOT NULL,
    status     enquiry_status NOT NULL,
    n          bigint         NOT NULL,
    version    bigint         NOT NULL DEFAULT 0,
    -- GET /enquiries `total` (status-only filters) and the tenant's change counter: one index range per tenant
    CONSTRAINT enquiry_counts_pkey PRIMARY KEY (tenant_id, status),
    CONSTRAINT enquiry_counts_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT enquiry_counts_n_check CHECK (n >= 0)
);

-- One statement-level trigger per INSERT statement (a COPY of a million rows aggregates once).
CREATE FUNCTION enquiry_counts_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO enquiry_counts (tenant_id, status, n, version)
    SELECT tenant_id, status, count(*), 1 FROM inserted_rows GROUP BY tenant_id, status ORDER BY tenant_id, status
    ON CONFLICT (tenant_id, status) DO UPDATE
    SET n = enquiry_counts.n + EXCLUDED.n, version = enquiry_counts.version + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER enquiries_counts_insert
    AFTER INSERT ON enquiries REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION enquiry_counts_after_insert();

-- An update that changes a filtered column: a status change moves one unit between two counter rows (the
-- decrement is a plain UPDATE — that row exists, it counts OLD — the increment an upsert, in status order);
-- any other such change bumps the version of the row's counter. The WHEN clause keeps updates that touch
-- nothing a list filter reads (notes, budget, session link, updated_at) free of trigger work.
CREATE FUNCTION enquiry_counts_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (OLD.tenant_id, OLD.status) = (NEW.tenant_id, NEW.status) THEN
        UPDATE enquiry_counts SET version = version + 1 WHERE tenant_id = NEW.tenant_id AND status = NEW.status;
        RETURN NULL;
    END IF;
    IF (OLD.tenant_id, OLD.status) < (NEW.tenant_id, NEW.status) THEN
        UPDATE enquiry_counts SET n = n - 1, version = version + 1
        WHERE tenant_id = OLD.tenant_id AND status = OLD.status;
    END IF;
    INSERT INTO enquiry_counts (tenant_id, status, n, version) VALUES (NEW.tenant_id, NEW.status, 1, 1)
    ON CONFLICT (tenant_id, status) DO UPDATE SET n = enquiry_counts.n + 1, version = enquiry_counts.version + 1;
    IF (OLD.tenant_id, OLD.status) > (NEW.tenant_id, NEW.status) THEN
        UPDATE enquiry_counts SET n = n - 1, version = version + 1
        WHERE tenant_id = OLD.tenant_id AND status = OLD.status;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER enquiries_counts_update
    AFTER UPDATE ON enquiries
    FOR EACH ROW WHEN ((OLD.tenant_id, OLD.status, OLD.customer_name, OLD.customer_email, OLD.customer_phone,
                        OLD.origin, OLD.destination, OLD.depart_date, OLD.created_at)
                       IS DISTINCT FROM
                       (NEW.tenant_id, NEW.status, NEW.customer_name, NEW.customer_email, NEW.customer_phone,
                        NEW.origin, NEW.destination, NEW.depart_date, NEW.created_at))
    EXECUTE FUNCTION enquiry_counts_after_update();

-- Enquiries are never deleted by the API; a tenant deletion cascades to both tables. Only UPDATE here:
-- inserting a counter row for a tenant being deleted would violate the foreign key.
CREATE FUNCTION enquiry_counts_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE enquiry_counts AS c SET n = c.n - d.n, version = c.version + 1
    FROM (SELECT tenant_id, status, count(*) AS n FROM deleted_rows GROUP BY tenant_id, status) AS d
    WHERE c.tenant_id = d.tenant_id AND c.status = d.status;
    RETURN NULL;
END
$$;

CREATE TRIGGER enquiries_counts_delete
    AFTER DELETE ON enquiries REFERENCING OLD TABLE AS deleted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION enquiry_counts_after_delete();

-- Rows that already exist when this migration runs.
INSERT INTO enquiry_counts (tenant_id, status, n, version)
SELECT tenant_id, status, count(*), 1 FROM enquiries GROUP BY tenant_id, status;
