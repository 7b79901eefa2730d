"""Finance documents and their ledger postings, arranged with direct SQL for the report and ledger tests.

Postings follow data-model.md (Double-entry ledger): a bill is Dr 5000 / Cr 2100, an invoice Dr 1200 / Cr 4000,
each for the document total. The data model documents no payment posting; a payment here is the usual one
against a cash account: Dr 1000 Cash / Cr 1200 for a customer's payment, Dr 2100 / Cr 1000 Cash for a payment
to a supplier (each entry balanced, so the database's deferred entry check accepts it).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import asyncpg

from voyagent.ids import new_id

CHART = (("1000", "Cash", "asset"), ("1200", "Accounts Receivable", "asset"), ("2100", "Accounts Payable", "liability"),
         ("4000", "Travel Sales", "revenue"), ("5000", "Cost of Travel Sales", "expense"))
DEFAULT_POSTED_AT = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.timezone.utc)


async def new_tenant(db: asyncpg.Connection, currency: str = "INR") -> uuid.UUID:
    """A tenant with its settings row (the report currency defaults to ``currency``)."""
    tenant_id = new_id()
    await db.execute("INSERT INTO tenants (id, display_name) VALUES ($1, 'Finance')", tenant_id)
    await db.execute("INSERT INTO tenant_settings (tenant_id, default_currency) VALUES ($1, $2)", tenant_id, currency)
    return tenant_id


async def chart(db: asyncpg.Connection, tenant_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """The tenant's accounts by code, the default chart plus 1000 Cash inserted when missing."""
    for code, name, kind in CHART:
        await db.execute("INSERT INTO ledger_accounts (id, tenant_id, code, name, type) "
                         "VALUES ($1, $2, $3, $4, $5::ledger_account_type) ON CONFLICT (tenant_id, code) DO NOTHING",
                         new_id(), tenant_id, code, name, kind)
    rows = await db.fetch("SELECT code, id FROM ledger_accounts WHERE tenant_id = $1", tenant_id)
    return {row["code"]: row["id"] for row in rows}


async def post(db: asyncpg.Connection, tenant_id: uuid.UUID, debit_account: uuid.UUID, credit_account: uuid.UUID,
               amount: Decimal, *, currency: str = "INR", posted_at: dt.datetime = DEFAULT_POSTED_AT,
               source: str = "test", memo: str | None = None) -> uuid.UUID:
    """One balanced two-line entry in its own transaction; returns its entry id."""
    entry_id = new_id()
    async with db.transaction():
        await db.executemany(
            "INSERT INTO journal_entries (entry_id, line_no, tenant_id, account_id, debit, credit, currency, memo, "
            "posted_at, source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            [(entry_id, 1, tenant_id, debit_account, amount, Decimal(0), currency, memo, posted_at, source),
             (entry_id, 2, tenant_id, credit_account, Decimal(0), amount, currency, memo, posted_at, source)])
    return entry_id


async def _document(db: asyncpg.Connection, table: str, tenant_id: uuid.UUID, *, party: str, issue_date: dt.date,
                    due_date: dt.date, total: Decimal, paid: Decimal, status: str, currency: str) -> uuid.UUID:
    doc_id = new_id()
    kind = "invoice_status" if table == "invoices" else "bill_status"
    columns = "id, tenant_id, number, party_name, issue_date, due_date, total_amount, currency, amount_paid, status"
    values = [doc_id, tenant_id, f"DOC-{doc_id.hex}", party, issue_date, due_date, total, currency, paid, status]
    if table == "bills":
        columns += ", vendor_reference"
        values.append(f"REF-{doc_id.hex}")
    placeholders = ", ".join(f"${i}" + (f"::{kind}" if i == 10 else "") for i in range(1, len(values) + 1))
    await db.execute(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", *values)
    return doc_id


# (table, open-status default, debit/credit account of the document, debit/credit account of a payment)
POSTINGS = {"invoice": ("invoices", "issued", ("1200", "4000"), ("1000", "1200")),
            "bill": ("bills", "received", ("5000", "2100"), ("2100", "1000"))}


async def document(db: asyncpg.Connection, kind: str, tenant_id: uuid.UUID, accounts: dict[str, uuid.UUID], *,
                   party: str, issue_date: dt.date, due_date: dt.date, total: Decimal, paid: Decimal = Decimal(0),
                   status: str | None = None, currency: str = "INR",
                   posted_at: dt.datetime = DEFAULT_POSTED_AT) -> uuid.UUID:
    """An invoice or a bill with its postings: one entry for the total, one for what was paid (if anything)."""
    table, default_status, (debit, credit), (paid_debit, paid_credit) = POSTINGS[kind]
    doc_id = await _document(db, table, tenant_id, party=party, issue_date=issue_date, due_date=due_date,
                             total=total, paid=paid, status=status or default_status, currency=currency)
    await post(db, tenant_id, accounts[debit], accounts[credit], total, currency=currency, posted_at=posted_at)
    if paid > 0:
        await post(db, tenant_id, accounts[paid_debit], accounts[paid_credit], paid, currency=currency,
                   posted_at=posted_at)
    return doc_id


async def invoice(db: asyncpg.Connection, tenant_id: uuid.UUID, accounts: dict[str, uuid.UUID],
                  **fields) -> uuid.UUID:
    """An invoice: Dr 1200 / Cr 4000 for the total, Dr 1000 / Cr 1200 for what was paid."""
    return await document(db, "invoice", tenant_id, accounts, **fields)


async def bill(db: asyncpg.Connection, tenant_id: uuid.UUID, accounts: dict[str, uuid.UUID], **fields) -> uuid.UUID:
    """A bill: Dr 5000 / Cr 2100 for the total, Dr 2100 / Cr 1000 for what was paid."""
    return await document(db, "bill", tenant_id, accounts, **fields)


# The statuses that make a document open (data-model.md, Aging rule 1), by report kind and its table.
OPEN_STATUSES = {"receivables": ("invoices", ("issued", "partially_paid")),
                 "payables": ("bills", ("received", "scheduled"))}


async def open_totals_kept(db: asyncpg.Connection, tenant_id: uuid.UUID) -> dict[str, dict]:
    """The tenant's open-document totals as the database keeps them (migration 0008), keyed like
    ``open_totals_of_documents``."""
    totals: dict[str, dict] = {}
    for table, key in (("open_document_parties", "party_name"), ("open_document_due_days", "due_date"),
                       ("open_document_issue_days", "issue_date")):
        amount = "outstanding" if table != "open_document_issue_days" else "NULL"
        rows = await db.fetch(f"SELECT kind, currency, {key} AS key, documents, {amount} AS amount FROM {table} "
                              "WHERE tenant_id = $1", tenant_id)
        totals[key] = {(r["kind"], r["currency"], r["key"]): (r["documents"], r["amount"]) for r in rows}
    return totals


async def open_totals_of_documents(db: asyncpg.Connection, tenant_id: uuid.UUID) -> dict[str, dict]:
    """The same totals computed here from the documents themselves: open status and outstanding > 0."""
    totals: dict[str, dict] = {"party_name": {}, "due_date": {}, "issue_date": {}}
    for kind, (table, statuses) in OPEN_STATUSES.items():
        rows = await db.fetch(f"SELECT party_name, currency, issue_date, due_date, total_amount, amount_paid, "
                              f"status::text AS status FROM {table} WHERE tenant_id = $1", tenant_id)
        for row in rows:
            outstanding = row["total_amount"] - row["amount_paid"]
            if row["status"] not in statuses or outstanding <= 0:
                continue
            for key in totals:
                count, amount = totals[key].get((kind, row["currency"], row[key]), (0, Decimal(0)))
                totals[key][(kind, row["currency"], row[key])] = (count + 1, amount + outstanding)
    totals["issue_date"] = {key: (count, None) for key, (count, _) in totals["issue_date"].items()}
    return totals
