-- name: get-aging^
-- Receivables (:kind 'receivables': open invoices, issued / partially_paid) or payables (:kind 'payables': open
-- bills, received / scheduled) aging (data-model.md, Aging) in one statement: the tenant's open documents issued
-- in [from_date, to_date] in the report currency (the given one, else the tenant's default_currency), bucketed
-- by days overdue against :today, with the four bucket counts/amounts, the total and the top 5 parties.
-- Two ways to the same sums, chosen by the issue-date totals of migration 0008: when fewer open documents were
-- issued outside the period than inside it, the tenant's totals per due date and per party (0008) minus the
-- documents issued before and after the period; otherwise the documents issued in the period. Either way the
-- documents read are grouped by party and bucket first, then the (few) rows give the buckets and the parties.
-- The branch of the other kind is a one-time filter that never runs.
-- Indexes: open_document_issue_days_pkey, open_document_due_days_pkey, open_document_parties_pkey (0008),
-- invoices_aging_idx, bills_aging_idx (0005).
WITH report AS (
    SELECT coalesce(:currency::char(3),
                    (SELECT s.default_currency FROM tenant_settings AS s WHERE s.tenant_id = :tenant_id),
                    'INR') AS currency
), way AS (
    -- subtracting when fewer of the open documents were issued outside the period than inside it
    SELECT coalesce(sum(d.documents) FILTER (WHERE d.issue_date NOT BETWEEN :from_date::date AND :to_date::date), 0)
               < coalesce(sum(d.documents) FILTER (WHERE d.issue_date BETWEEN :from_date::date AND :to_date::date), 0)
               AS subtracting
    FROM open_document_issue_days AS d
    WHERE d.tenant_id = :tenant_id AND d.kind = :kind::text AND d.currency = (SELECT r.currency FROM report AS r)
), ranges AS (
    -- the issue dates whose documents are read one by one, and whether they add (1) or subtract (-1)
    SELECT :from_date::date AS low, :to_date::date AS high, 1 AS sign FROM way AS w WHERE NOT w.subtracting
    UNION ALL
    SELECT '-infinity'::date, :from_date::date - 1, -1 FROM way AS w WHERE w.subtracting
    UNION ALL
    SELECT :to_date::date + 1, 'infinity'::date, -1 FROM way AS w WHERE w.subtracting
), dated AS (
    -- the totals per due date (subtracting only; no party) and the documents read, signed
    SELECT NULL::varchar AS party_name, d.due_date, d.documents, d.outstanding
    FROM open_document_due_days AS d
    WHERE (SELECT w.subtracting FROM way AS w)
      AND d.tenant_id = :tenant_id AND d.kind = :kind::text AND d.currency = (SELECT r.currency FROM report AS r)
    UNION ALL
    SELECT i.party_name, i.due_date, g.sign, g.sign * (i.total_amount - i.amount_paid)
    FROM ranges AS g
    JOIN invoices AS i ON i.issue_date BETWEEN g.low AND g.high
    WHERE :kind::text = 'receivables'
      AND i.tenant_id = :tenant_id
      AND i.currency = (SELECT r.currency FROM report AS r)
      AND i.status IN ('issued', 'partially_paid')
      AND i.total_amount > i.amount_paid
    UNION ALL
    SELECT b.party_name, b.due_date, g.sign, g.sign * (b.total_amount - b.amount_paid)
    FROM ranges AS g
    JOIN bills AS b ON b.issue_date BETWEEN g.low AND g.high
    WHERE :kind::text = 'payables'
      AND b.tenant_id = :tenant_id
      AND b.currency = (SELECT r.currency FROM report AS r)
      AND b.status IN ('received', 'scheduled')
      AND b.total_amount > b.amount_paid
), bucketed AS (
    SELECT d.party_name,
           CASE WHEN :today::date - d.due_date <= 30 THEN 1
                WHEN :today::date - d.due_date <= 60 THEN 2
                WHEN :today::date - d.due_date <= 90 THEN 3
                ELSE 4 END AS bucket,
           sum(d.documents) AS documents, sum(d.outstanding) AS outstanding
    FROM dated AS d
    GROUP BY 1, 2
), buckets AS (
    SELECT coalesce(sum(b.outstanding), 0) AS amount,
           ARRAY[coalesce(sum(b.documents) FILTER (WHERE b.bucket = 1), 0),
                 coalesce(sum(b.documents) FILTER (WHERE b.bucket = 2), 0),
                 coalesce(sum(b.documents) FILTER (WHERE b.bucket = 3), 0),
                 coalesce(sum(b.documents) FILTER (WHERE b.bucket = 4), 0)]::bigint[] AS counts,
           ARRAY[coalesce(sum(b.outstanding) FILTER (WHERE b.bucket = 1), 0),
                 coalesce(sum(b.outstanding) FILTER (WHERE b.bucket = 2), 0),
                 coalesce(sum(b.outstanding) FILTER (WHERE b.bucket = 3), 0),
                 coalesce(sum(b.outstanding) FILTER (WHERE b.bucket = 4), 0)] AS amounts
    FROM bucketed AS b
), parties AS (
    -- the totals per party (subtracting only) and the documents read, signed; a party left with no document
    -- (all of its documents issued outside the period) is no party of the report
    SELECT p.party_name AS name, sum(p.outstanding) AS amount
    FROM (SELECT t.party_name, t.documents, t.outstanding
          FROM open_document_parties AS t
          WHERE (SELECT w.subtracting FROM way AS w)
            AND t.tenant_id = :tenant_id AND t.kind = :kind::text
            AND t.currency = (SELECT r.currency FROM report AS r)
          UNION ALL
          SELECT b.party_name, b.documents, b.outstanding FROM bucketed AS b WHERE b.party_name IS NOT NULL) AS p
    GROUP BY p.party_name
    HAVING sum(p.documents) > 0
), top AS (
    SELECT p.name, p.amount
    FROM parties AS p
    ORDER BY p.amount DESC, p.name COLLATE "C"
    LIMIT 5
)
SELECT (SELECT r.currency FROM report AS r) AS currency,
       b.amount AS total_outstanding, b.counts AS bucket_counts, b.amounts AS bucket_amounts,
       (SELECT coalesce(array_agg(p.name ORDER BY p.amount DESC, p.name COLLATE "C"), '{}') FROM top AS p)
           AS party_names,
       (SELECT coalesce(array_agg(p.amount ORDER BY p.amount DESC, p.name COLLATE "C"), '{}') FROM top AS p)
           AS party_amounts
FROM buckets AS b;

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
