-- The agent's ledger postings (data-model.md, Double-entry ledger): the default chart of accounts and
-- balanced journal entries. Migration 0006 re-checks every entry at commit.

-- name: ensure-default-chart!
-- The default chart for a tenant, inserted the first time the agent posts (existing accounts are kept).
INSERT INTO ledger_accounts (id, tenant_id, code, name, type)
SELECT a.id, :tenant_id, a.code, a.name, a.type::ledger_account_type
FROM unnest(:ids::uuid[], :codes::text[], :names::text[], :types::text[]) AS a (id, code, name, type)
ORDER BY a.code
ON CONFLICT (tenant_id, code) DO NOTHING;

-- name: get-ledger-accounts
-- The tenant's accounts of the given codes (ledger_accounts_tenant_id_code_key).
SELECT a.code, a.id
FROM ledger_accounts AS a
WHERE a.tenant_id = :tenant_id AND a.code = any(:codes::text[])
ORDER BY a.code;

-- name: insert-journal-lines!
-- The lines of one entry, numbered 1…n, sharing entry id, tenant, currency, posted_at, source and memo.
INSERT INTO journal_entries (entry_id, line_no, tenant_id, account_id, debit, credit, currency, memo, posted_at,
                             source)
SELECT :entry_id, l.line_no, :tenant_id, l.account_id, l.debit, l.credit, :currency, :memo, :posted_at, :source
FROM unnest(:line_nos::integer[], :account_ids::uuid[], :debits::numeric[], :credits::numeric[])
    AS l (line_no, account_id, debit, credit)
ORDER BY l.line_no;
