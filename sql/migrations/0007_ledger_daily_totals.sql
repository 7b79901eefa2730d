-- 0007: per-account daily totals of the ledger, so GET /reports/trial-balance sums a few hundred rows per
-- account (one per UTC day with postings) instead of every journal line (500,000 lines: 190-340 ms a request; see
-- docs/decisions.md). The trial balance's cut-off is the end of a UTC day, so daily totals answer it exactly.
--
-- A statement-level trigger adds each INSERT's lines, grouped by (account, UTC day of posted_at, currency), to
-- the stripe of its backend (pg_backend_pid() % 16), as in 0002/0003: concurrent postings to one account on one
-- day do not queue on one row lock until commit; only the sum over the stripes means anything. It runs in the
-- inserting transaction, so the totals are exact under MVCC. Lines are immutable (0006: UPDATE, DELETE and
-- TRUNCATE refused), so inserts are the only change to follow; a deleted tenant's totals go with its accounts.

CREATE TABLE ledger_daily_totals (
    account_id  uuid     NOT NULL,
    day         date     NOT NULL,
    currency    char(3)  NOT NULL,
    stripe      smallint NOT NULL,
    debit       numeric  NOT NULL,
    credit      numeric  NOT NULL,
    -- get-trial-balance: one account's days up to as_of (one index range per account)
    CONSTRAINT ledger_daily_totals_pkey PRIMARY KEY (account_id, day, currency, stripe),
    CONSTRAINT ledger_daily_totals_account_id_fkey FOREIGN KEY (account_id) REFERENCES ledger_accounts (id)
        ON DELETE CASCADE,
    CONSTRAINT ledger_daily_totals_stripe_check CHECK (stripe BETWEEN 0 AND 15)
);

CREATE FUNCTION ledger_daily_totals_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- rows touched in key order, so two transactions cannot deadlock on them
    INSERT INTO ledger_daily_totals AS t (account_id, day, currency, stripe, debit, credit)
    SELECT l.account_id, (l.posted_at AT TIME ZONE 'UTC')::date, l.currency, (pg_backend_pid() % 16)::smallint,
           sum(l.debit), sum(l.credit)
    FROM inserted_lines AS l
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (account_id, day, currency, stripe)
    DO UPDATE SET debit = t.debit + EXCLUDED.debit, credit = t.credit + EXCLUDED.credit;
    RETURN NULL;
END $$;

CREATE TRIGGER journal_entries_daily_totals AFTER INSERT ON journal_entries
    REFERENCING NEW TABLE AS inserted_lines FOR EACH STATEMENT EXECUTE FUNCTION ledger_daily_totals_after_insert();

-- Lines posted before this migration.
INSERT INTO ledger_daily_totals (account_id, day, currency, stripe, debit, credit)
SELECT account_id, (posted_at AT TIME ZONE 'UTC')::date, currency, 0, sum(debit), sum(credit)
FROM journal_entries
GROUP BY 1, 2, 3;
