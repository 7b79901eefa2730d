"""Property tests of the finance reports against an independent computation in Python.

For random sets of bills (bookings), invoices, partial payments, statuses, currencies, issue and due dates
(the bucket edge days 30/31, 60/61, 90/91 and documents not yet due drawn often), posted to the ledger by the
data model's rules (tests/finance.py), with "today" pinned:

* the trial balance is in balance at any cut-off, and Accounts Receivable / Payable carry exactly the open
  amounts posted up to it;
* the receivables and payables totals equal the outstanding amounts of the open documents computed here, every
  open document is counted in exactly one bucket, and the top parties follow the amount-then-name rule;
* after random changes to those documents (payments, statuses, totals, parties, currencies, dates, deletes, one
  row or many per statement, in one transaction or several), the open-document totals the database keeps
  (migration 0008) equal the ones computed here from the documents, and the aging reports still agree.
"""

import asyncio
import dataclasses
import datetime as dt
from decimal import Decimal

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import finance
from voyagent.services import reports

TODAY = dt.date(2026, 6, 15)
EDGE_DAYS = [-45, -1, 0, 1, 29, 30, 31, 59, 60, 61, 89, 90, 91, 400]
PARTIES = ["Asha", "asha", "Ravi", "Meera", "Omar", "Lena", "Zed"]
OPEN = {"invoice": ("issued", "partially_paid"), "bill": ("received", "scheduled")}
STATUSES = {"invoice": ["draft", "issued", "partially_paid", "paid", "void"],
            "bill": ["draft", "received", "scheduled", "paid", "void"]}


@dataclasses.dataclass(frozen=True)
class Doc:
    kind: str
    party: str
    status: str
    currency: str
    issue_date: dt.date
    due_date: dt.date
    total: Decimal
    paid: Decimal
    posted_at: dt.datetime


cents = st.integers(min_value=1, max_value=5_000_000).map(lambda c: Decimal(c).scaleb(-2))


@st.composite
def documents(draw):
    kind = draw(st.sampled_from(["invoice", "bill"]))
    total = draw(cents)
    paid = draw(st.one_of(st.just(Decimal("0.00")), st.just(total), st.just(total + Decimal("0.01")),
                          st.integers(min_value=0, max_value=int(total * 100)).map(lambda c: Decimal(c).scaleb(-2))))
    overdue = draw(st.one_of(st.sampled_from(EDGE_DAYS), st.sampled_from(EDGE_DAYS), st.sampled_from(EDGE_DAYS),
                             st.integers(min_value=-120, max_value=500)))
    status = draw(st.one_of(st.sampled_from(OPEN[kind]), st.sampled_from(OPEN[kind]), st.sampled_from(STATUSES[kind])))
    issue_day = draw(st.integers(min_value=0, max_value=120))
    posted_day = draw(st.integers(min_value=0, max_value=120))
    return Doc(kind=kind, party=draw(st.sampled_from(PARTIES)), status=status,
               currency=draw(st.sampled_from(["INR", "INR", "INR", "USD"])),
               issue_date=TODAY - dt.timedelta(days=issue_day), due_date=TODAY - dt.timedelta(days=overdue),
               total=total, paid=paid,
               posted_at=dt.datetime.combine(TODAY - dt.timedelta(days=posted_day), dt.time(23, 59, 59, 999_999),
                                             tzinfo=dt.timezone.utc)
               if draw(st.booleans()) else
               dt.datetime.combine(TODAY - dt.timedelta(days=posted_day), dt.time(0), tzinfo=dt.timezone.utc))


def bucket_of(due_date):
    overdue = (TODAY - due_date).days
    return "0-30" if overdue <= 30 else "31-60" if overdue <= 60 else "61-90" if overdue <= 90 else "90+"


def expected_aging(docs, kind, date_from, date_to, currency):
    open_docs = [d for d in docs if d.kind == kind and d.status in OPEN[kind] and d.currency == currency
                 and date_from <= d.issue_date <= date_to and d.total - d.paid > 0]
    buckets = {b: (0, Decimal("0.00")) for b in reports.BUCKETS}
    parties: dict[str, Decimal] = {}
    for d in open_docs:
        count, amount = buckets[bucket_of(d.due_date)]
        buckets[bucket_of(d.due_date)] = (count + 1, amount + d.total - d.paid)
        parties[d.party] = parties.get(d.party, Decimal(0)) + d.total - d.paid
    top = sorted(parties.items(), key=lambda p: (-p[1], p[0].encode()))[:5]
    return len(open_docs), sum((d.total - d.paid for d in open_docs), Decimal("0.00")), buckets, top


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def conn(loop, database):
    conn = loop.run_until_complete(asyncpg.connect(database.dsn))
    yield conn
    loop.run_until_complete(conn.close())


async def _arrange(conn, docs):
    """A new tenant holding ``docs``; its id and the documents' ids."""
    tenant_id = await finance.new_tenant(conn, "INR")
    accounts = await finance.chart(conn, tenant_id)
    ids = []
    for d in docs:
        add = finance.invoice if d.kind == "invoice" else finance.bill
        ids.append(await add(conn, tenant_id, accounts, party=d.party, issue_date=d.issue_date, due_date=d.due_date,
                             total=d.total, paid=d.paid, status=d.status, currency=d.currency,
                             posted_at=d.posted_at))
    return tenant_id, ids


async def _check_aging(conn, queries, tenant_id, docs, date_from, date_to, currency):
    for kind, report_kind, key in (("invoice", "receivables", "top_debtors"), ("bill", "payables", "top_creditors")):
        report = await reports.aging(conn, queries, kind=report_kind, tenant_id=tenant_id, date_from=date_from,
                                     date_to=date_to, currency=currency, today=TODAY)
        count, total, buckets, top = expected_aging(docs, kind, date_from, date_to, currency or "INR")
        assert report["total_outstanding"] == {"amount": total, "currency": currency or "INR"}
        assert [b["bucket"] for b in report["aging_buckets"]] == list(reports.BUCKETS)
        assert sum(b["count"] for b in report["aging_buckets"]) == count  # each open document exactly once
        assert {b["bucket"]: (b["count"], b["amount"]["amount"]) for b in report["aging_buckets"]} == buckets
        assert sum((b["amount"]["amount"] for b in report["aging_buckets"]), Decimal(0)) == total
        assert [(p["name"], p["amount"]["amount"]) for p in report[key]] == top


async def _check(conn, queries, docs, date_from, date_to, currency, as_of):
    tenant_id, _ids = await _arrange(conn, docs)
    await _check_aging(conn, queries, tenant_id, docs, date_from, date_to, currency)
    assert await finance.open_totals_kept(conn, tenant_id) == await finance.open_totals_of_documents(conn, tenant_id)
    balance = await reports.trial_balance(conn, queries, tenant_id=tenant_id, as_of=as_of, include_zero=True)
    assert balance["in_balance"] and balance["total_debit"] == balance["total_credit"]
    cutoff = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(0), tzinfo=dt.timezone.utc)
    posted = [d for d in docs if d.posted_at < cutoff]
    by_code = {a["code"]: a for a in balance["accounts"]}
    for code, kind, sign in (("1200", "invoice", 1), ("2100", "bill", -1)):
        for currency_name in ("INR", "USD"):
            open_amount = sum((d.total - d.paid for d in posted if d.kind == kind and d.currency == currency_name),
                              Decimal(0))
            if not any(d.kind == kind and d.currency != currency_name for d in posted):
                # a single-currency account: its balance is the open amount posted up to the cut-off
                assert by_code[code]["balance"] == sign * open_amount
    assert [a["code"] for a in balance["accounts"]] == ["1000", "1200", "2100", "4000", "5000"]
    # the daily totals the report reads (migration 0007) agree with the lines themselves
    direct = await conn.fetch(
        "SELECT a.code, sum(j.debit) AS debit, sum(j.credit) AS credit FROM journal_entries AS j "
        "JOIN ledger_accounts AS a ON a.id = j.account_id WHERE j.tenant_id = $1 AND j.posted_at < $2 "
        "GROUP BY a.code", tenant_id, cutoff)
    assert {r["code"]: (r["debit"], r["credit"]) for r in direct} == {
        a["code"]: (a["debit"], a["credit"]) for a in balance["accounts"] if a["debit"] or a["credit"]}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=st.lists(documents(), max_size=25),
       period=st.one_of(st.just((0, 130)), st.tuples(st.integers(min_value=0, max_value=130),
                                                       st.integers(min_value=0, max_value=130))),
       currency=st.sampled_from([None, None, "INR", "USD"]),
       as_of_days=st.integers(min_value=-1, max_value=125))
def test_reports_agree_with_an_independent_computation(loop, conn, queries, docs, period, currency, as_of_days):
    date_from, date_to = sorted(TODAY - dt.timedelta(days=d) for d in period)
    as_of = TODAY - dt.timedelta(days=as_of_days)
    loop.run_until_complete(_check(conn, queries, docs, date_from, date_to, currency, as_of))


# --- the open-document totals (migration 0008) under random changes -------------------------------------------

TABLES = {"invoice": ("invoices", "invoice_status"), "bill": ("bills", "bill_status")}


@st.composite
def changes(draw):
    """One statement against the documents: (what, index of the document or a party, the new value)."""
    what = draw(st.sampled_from(["paid", "status", "total", "party_name", "currency", "issue_date", "due_date",
                                 "delete", "party_paid", "party_delete"]))
    if what in ("party_paid", "party_delete"):  # many rows in one statement, several sharing a key
        return what, draw(st.sampled_from(PARTIES)), draw(st.sampled_from(["invoice", "bill"]))
    value = {"paid": cents, "total": cents, "status": st.integers(min_value=0, max_value=4),
             "party_name": st.sampled_from(PARTIES), "currency": st.sampled_from(["INR", "USD"]),
             "issue_date": st.integers(min_value=0, max_value=120).map(lambda d: TODAY - dt.timedelta(days=d)),
             "due_date": st.sampled_from(EDGE_DAYS).map(lambda d: TODAY - dt.timedelta(days=d)),
             "delete": st.none()}[what]
    return what, draw(st.integers(min_value=0, max_value=1_000)), draw(value)


async def _change(conn, tenant_id, docs, ids, change):
    what, target, value = change
    if what in ("party_paid", "party_delete"):
        table = TABLES[value][0]
        if what == "party_paid":
            await conn.execute(f"UPDATE {table} SET amount_paid = total_amount / 2 WHERE tenant_id = $1 "
                               "AND party_name = $2", tenant_id, target)
        else:
            await conn.execute(f"DELETE FROM {table} WHERE tenant_id = $1 AND party_name = $2", tenant_id, target)
        return
    doc = docs[target % len(docs)]
    table, status_type = TABLES[doc.kind]
    doc_id = ids[target % len(docs)]
    if what == "delete":
        await conn.execute(f"DELETE FROM {table} WHERE id = $1", doc_id)
    elif what == "status":
        await conn.execute(f"UPDATE {table} SET status = $2::{status_type} WHERE id = $1", doc_id,
                           STATUSES[doc.kind][value])
    else:
        column = {"paid": "amount_paid", "total": "total_amount"}.get(what, what)
        await conn.execute(f"UPDATE {table} SET {column} = $2 WHERE id = $1", doc_id, value)


async def _documents_now(conn, tenant_id):
    """The tenant's documents as they are after the changes, as ``Doc``s for ``expected_aging``."""
    docs = []
    for kind, (table, _type) in TABLES.items():
        for r in await conn.fetch(f"SELECT party_name, status::text AS status, currency, issue_date, due_date, "
                                  f"total_amount, amount_paid FROM {table} WHERE tenant_id = $1", tenant_id):
            docs.append(Doc(kind=kind, party=r["party_name"], status=r["status"], currency=r["currency"],
                            issue_date=r["issue_date"], due_date=r["due_date"], total=r["total_amount"],
                            paid=r["amount_paid"], posted_at=finance.DEFAULT_POSTED_AT))
    return docs


async def _check_changes(conn, queries, docs, steps, one_transaction, date_from, date_to):
    tenant_id, ids = await _arrange(conn, docs)
    if one_transaction:
        async with conn.transaction():
            for change in steps:
                await _change(conn, tenant_id, docs, ids, change)
    else:
        for change in steps:
            await _change(conn, tenant_id, docs, ids, change)
    assert await finance.open_totals_kept(conn, tenant_id) == await finance.open_totals_of_documents(conn, tenant_id)
    await _check_aging(conn, queries, tenant_id, await _documents_now(conn, tenant_id), date_from, date_to, None)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=st.lists(documents(), min_size=1, max_size=20), steps=st.lists(changes(), max_size=12),
       one_transaction=st.booleans(),
       period=st.one_of(st.just((0, 130)), st.tuples(st.integers(min_value=0, max_value=130),
                                                       st.integers(min_value=0, max_value=130))))
def test_open_totals_follow_every_change(loop, conn, queries, docs, steps, one_transaction, period):
    date_from, date_to = sorted(TODAY - dt.timedelta(days=d) for d in period)
    loop.run_until_complete(_check_changes(conn, queries, docs, steps, one_transaction, date_from, date_to))
