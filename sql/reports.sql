-- name: get-aging^
-- Receivables (:kind 'receivables': open invoices, issued / partially_paid) or payables (:kind 'payables': open
-- bills, received / scheduled) aging (data-model.md, Aging) in one statement: the tenant's open documents issued
-- in [from_date, to_date] in the report currency (the given one, else the tenant's default_currency), bucketed
-- by days overdue against :today, with the four bucket counts/amounts, the total and the top 5 parties. The
-- branch of the other kind is a one-time filter that never runs. One pass over the documents: grouped by party
-- with a count and a sum per bucket, then the (few) party rows give the bucket totals and the top parties.
-- Indexes: invoices_aging_idx, bills_aging_idx (migration 0005).
WITH report AS (
    SELECT coalesce(:currency::char(3),
                    (SELECT s.default_currency FROM tenant_settings AS s WHERE s.tenant_id = :tenant_id),
                    'INR') AS currency
), candidates AS (
    SELECT i.party_name, i.total_amount - i.amount_paid AS outstanding, i.due_date
    FROM invoices AS i
    WHERE :kind::text = 'receivables'
      AND i.tenant_id = :tenant_id
      AND i.currency = (SELECT r.currency FROM report AS r)
      AND i.status IN ('issued', 'partially_paid')
      AND i.issue_date BETWEEN :from_date::date AND :to_date::date
    UNION ALL
    SELECT b.party_name, b.total_amount - b.amount_paid AS outstanding, b.due_date
    FROM bills AS b
    WHERE :kind::text = 'payables'
      AND b.tenant_id = :tenant_id
      AND b.currency = (SELECT r.currency FROM report AS r)
      AND b.status IN ('received', 'scheduled')
      AND b.issue_date BETWEEN :from_date::date AND :to_date::date
), parties AS (
    SELECT c.party_name AS name, sum(c.outstanding) AS amount,
           count(*) FILTER (WHERE :today::date - c.due_date <= 30) AS count_1,
           count(*) FILTER (WHERE :today::date - c.due_date BETWEEN 31 AND 60) AS count_2,
           count(*) FILTER (WHERE :today::date - c.due_date BETWEEN 61 AND 90) AS count_3,
           count(*) FILTER (WHERE :today::date - c.due_date > 90) AS count_4,
           sum(c.outstanding) FILTER (WHERE :today::date - c.due_date <= 30) AS amount_1,
           sum(c.outstanding) FILTER (WHERE :today::date - c.due_date BETWEEN 31 AND 60) AS amount_2,
           sum(c.outstanding) FILTER (WHERE :today::date - c.due_date BETWEEN 61 AND 90) AS amount_3,
           sum(c.outstanding) FILTER (WHERE :today::date - c.due_date > 90) AS amount_4
    FROM candidates AS c
    WHERE c.outstanding > 0
    GROUP BY c.party_name
), totals AS (
    SELECT coalesce(sum(p.amount), 0) AS amount,
           ARRAY[coalesce(sum(p.count_1), 0), coalesce(sum(p.count_2), 0), coalesce(sum(p.count_3), 0),
                 coalesce(sum(p.count_4), 0)]::bigint[] AS counts,
           ARRAY[coalesce(sum(p.amount_1), 0), coalesce(sum(p.amount_2), 0), coalesce(sum(p.amount_3), 0),
                 coalesce(sum(p.amount_4), 0)] AS amounts
    FROM parties AS p
), top AS (
    SELECT p.name, p.amount
    FROM parties AS p
    ORDER BY p.amount DESC, p.name COLLATE "C"
    LIMIT 5
)
SELECT (SELECT r.currency FROM report AS r) AS currency,
       t.amount AS total_outstanding, t.counts AS bucket_counts, t.amounts AS bucket_amounts,
       (SELECT coalesce(array_agg(p.name ORDER BY p.amount DESC, p.name COLLATE "C"), '{}') FROM top AS p)
           AS party_names,
       (SELECT coalesce(array_agg(p.amount ORDER BY p.amount DESC, p.name COLLATE "C"), '{}') FROM top AS p)
           AS party_amounts
FROM totals AS t;

-- name: get-trial-balance^
-- Trial balance (data-model.md, Trial balance) in one statement: every ledger account of the tenant with the
-- sums of its lines posted up to the end of :as_of (UTC) — read from the daily totals of migration 0007, whose
-- days are UTC days — its currency (MIXED when its lines differ, the tenant's default_currency when it has
-- none), listed by code in byte order, zero accounts only with :include_zero, and the totals over the listed
-- accounts. Indexes: ledger_accounts_tenant_id_code_key, ledger_daily_totals_pkey (0007).
WITH settings AS (
    SELECT coalesce((SELECT s.default_currency::text FROM tenant_settings AS s WHERE s.tenant_id = :tenant_id),
                    'INR') AS currency
), accounts AS (
    SELECT a.code, a.name, a.type::text AS type,
           coalesce(l.debit, 0) AS debit, coalesce(l.credit, 0) AS credit,
           CASE WHEN l.first_currency IS NULL THEN (SELECT s.currency FROM settings AS s)
                WHEN l.first_currency <> l.last_currency THEN 'MIXED'
                ELSE l.first_currency END AS currency
    FROM ledger_accounts AS a
    CROSS JOIN LATERAL (
        SELECT sum(t.debit) AS debit, sum(t.credit) AS credit,
               min(t.currency::text) AS first_currency, max(t.currency::text) AS last_currency
        FROM ledger_daily_totals AS t
        WHERE t.account_id = a.id
          AND t.day <= :as_of::date
    ) AS l
    WHERE a.tenant_id = :tenant_id
      AND (:include_zero::boolean OR l.debit IS NOT NULL)
)
SELECT coalesce(array_agg(a.code ORDER BY a.code COLLATE "C"), '{}') AS codes,
       coalesce(array_agg(a.name ORDER BY a.code COLLATE "C"), '{}') AS names,
       coalesce(array_agg(a.type ORDER BY a.code COLLATE "C"), '{}') AS types,
       coalesce(array_agg(a.debit ORDER BY a.code COLLATE "C"), '{}') AS debits,
       coalesce(array_agg(a.credit ORDER BY a.code COLLATE "C"), '{}') AS credits,
       coalesce(array_agg(a.currency ORDER BY a.code COLLATE "C"), '{}') AS currencies,
       coalesce(sum(a.debit), 0) AS total_debit,
       coalesce(sum(a.credit), 0) AS total_credit
FROM accounts AS a;
