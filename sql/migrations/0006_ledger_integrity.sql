-- 0006: the database keeps the ledger honest on its own, beyond the application's posting rules
-- (data-model.md, Double-entry ledger), so no code path — a bug, a script, a manual psql session — can leave
-- an unbalanced or cross-tenant entry behind.
--
--   * journal lines are immutable: UPDATE is refused; DELETE is refused unless the line's tenant is already
--     gone (the tenants ON DELETE CASCADE removes a deleted tenant's whole ledger); TRUNCATE is refused;
--   * at commit, every entry that received a line must have equal debit and credit sums, one tenant, one
--     currency, one posted_at, and only accounts of that tenant (a DEFERRABLE INITIALLY DEFERRED constraint
--     trigger, so the lines of one entry may be inserted by several statements of the transaction);
--   * a ledger account cannot move to another tenant (its lines would then point across tenants).
-- Refusals raise SQLSTATE 23514 (check_violation) for the entry checks and 23001 (restrict_violation) for
-- changes to posted lines, each naming the rule in the message and the constraint.

CREATE FUNCTION journal_entries_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND NOT EXISTS (SELECT 1 FROM tenants WHERE id = OLD.tenant_id) THEN
        RETURN OLD;  -- the tenant's cascade: its whole ledger goes with it
    END IF;
    RAISE EXCEPTION 'journal lines are immutable: % of entry % line % refused; post a correcting entry',
        TG_OP, OLD.entry_id, OLD.line_no
        USING ERRCODE = 'restrict_violation', CONSTRAINT = 'journal_entries_immutable';
END $$;

CREATE TRIGGER journal_entries_immutable BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION journal_entries_refuse_change();

CREATE FUNCTION journal_entries_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'journal lines are immutable: TRUNCATE refused'
        USING ERRCODE = 'restrict_violation', CONSTRAINT = 'journal_entries_immutable';
END $$;

CREATE TRIGGER journal_entries_no_truncate BEFORE TRUNCATE ON journal_entries
    FOR EACH STATEMENT EXECUTE FUNCTION journal_entries_refuse_truncate();

-- Runs at commit once per inserted line; each run reads only its entry's lines (primary key prefix).
CREATE FUNCTION journal_entries_check_entry() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    e record;
BEGIN
    SELECT count(*) AS lines,
           coalesce(sum(j.debit), 0) AS debit,
           coalesce(sum(j.credit), 0) AS credit,
           count(DISTINCT j.tenant_id) AS tenants,
           count(DISTINCT j.currency) AS currencies,
           count(DISTINCT j.posted_at) AS posted_ats,
           count(*) FILTER (WHERE a.tenant_id IS DISTINCT FROM j.tenant_id) AS foreign_accounts
    INTO e
    FROM journal_entries AS j
    LEFT JOIN ledger_accounts AS a ON a.id = j.account_id
    WHERE j.entry_id = NEW.entry_id;
    IF e.lines = 0 THEN
        RETURN NULL;  -- inserted and removed again by its tenant's deletion in the same transaction
    END IF;
    IF e.tenants <> 1 THEN
        RAISE EXCEPTION 'journal entry % mixes tenants', NEW.entry_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_entries_one_tenant';
    END IF;
    IF e.foreign_accounts <> 0 THEN
        RAISE EXCEPTION 'journal entry % posts to an account of another tenant', NEW.entry_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_entries_own_accounts';
    END IF;
    IF e.currencies <> 1 THEN
        RAISE EXCEPTION 'journal entry % mixes currencies', NEW.entry_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_entries_one_currency';
    END IF;
    IF e.posted_ats <> 1 THEN
        RAISE EXCEPTION 'journal entry % has lines posted at different times', NEW.entry_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_entries_one_posted_at';
    END IF;
    IF e.debit <> e.credit THEN
        RAISE EXCEPTION 'journal entry % is unbalanced: debits % <> credits %', NEW.entry_id, e.debit, e.credit
            USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_entries_balanced';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER journal_entries_entry_check AFTER INSERT ON journal_entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION journal_entries_check_entry();

CREATE FUNCTION ledger_accounts_keep_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger account % cannot move to another tenant', OLD.id
        USING ERRCODE = 'restrict_violation', CONSTRAINT = 'ledger_accounts_tenant_fixed';
END $$;

CREATE TRIGGER ledger_accounts_tenant_fixed BEFORE UPDATE OF tenant_id ON ledger_accounts
    FOR EACH ROW WHEN (NEW.tenant_id IS DISTINCT FROM OLD.tenant_id)
    EXECUTE FUNCTION ledger_accounts_keep_tenant();
