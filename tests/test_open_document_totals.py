"""The database keeps the open-document totals of the aging reports (migration 0008) equal to the documents:
through the services that write documents (the agent's bills and invoices, payments), a deleted tenant, a
TRUNCATE, two writers racing on one party's row, and a change the triggers never saw (the next write refuses to
go on from wrong totals). The random-change property test is in tests/test_reports_properties.py."""

import asyncio
import datetime as dt
import uuid
from decimal import Decimal

import asyncpg
import pytest

from tests import finance
from voyagent.ids import new_id
from voyagent.services import billing, payments

NOW = dt.datetime(2026, 6, 15, 9, 30, tzinfo=dt.timezone.utc)


async def assert_totals_follow_documents(db, tenant_id):
    kept = await finance.open_totals_kept(db, tenant_id)
    assert kept == await finance.open_totals_of_documents(db, tenant_id)
    return kept


def posting():
    return billing.Posting(document_id=new_id(), source=f"test:{uuid.uuid4()}", posted_at=NOW)


async def _invoice(db, queries, tenant_id, party, amount):
    async with db.transaction():
        made = await billing.create_invoice(db, queries, tenant_id=tenant_id, party_name=party, party_reference="s",
                                            amount=Decimal(amount), currency="INR", posting=posting())
    return uuid.UUID(made["invoice_id"])


async def test_the_services_that_write_documents_keep_the_totals(db, queries):
    tenant_id = await finance.new_tenant(db)
    asha = await _invoice(db, queries, tenant_id, "Asha", "100.00")
    ravi = await _invoice(db, queries, tenant_id, "Ravi", "40.00")
    async with db.transaction():
        bill = await billing.create_bill(db, queries, tenant_id=tenant_id, party_name="Air", party_reference="s",
                                         vendor_reference="PNR1", amount=Decimal("70.00"), currency="INR",
                                         posting=posting())
    kept = await assert_totals_follow_documents(db, tenant_id)
    assert kept["party_name"][("receivables", "INR", "Asha")] == (1, Decimal("100.00"))
    assert kept["due_date"][("payables", "INR", NOW.date() + dt.timedelta(days=billing.BILL_DUE_DAYS))] == (
        1, Decimal("70.00"))

    async with db.transaction():  # part payment: the amount drops, the document still counts
        await payments.receive_invoice_payment(db, queries, tenant_id=tenant_id, invoice_id=asha,
                                               amount=Decimal("30.00"), paid_at=NOW)
    async with db.transaction():  # paid in full: Ravi's rows go
        await payments.receive_invoice_payment(db, queries, tenant_id=tenant_id, invoice_id=ravi,
                                               amount=Decimal("40.00"), paid_at=NOW)
    async with db.transaction():
        await payments.pay_bill(db, queries, tenant_id=tenant_id, bill_id=uuid.UUID(bill["bill_id"]),
                                amount=Decimal("70.00"), paid_at=NOW)
    kept = await assert_totals_follow_documents(db, tenant_id)
    assert kept["party_name"] == {("receivables", "INR", "Asha"): (1, Decimal("70.00"))}
    assert kept["issue_date"] == {("receivables", "INR", NOW.date()): (1, None)}


async def test_a_deleted_tenant_leaves_no_totals(db, queries):
    tenant_id, other_id = await finance.new_tenant(db), await finance.new_tenant(db)
    for tenant in (tenant_id, other_id):
        accounts = await finance.chart(db, tenant)
        await finance.invoice(db, tenant, accounts, party="Asha", issue_date=dt.date(2026, 5, 1),
                              due_date=dt.date(2026, 5, 15), total=Decimal("12.00"))
        await finance.bill(db, tenant, accounts, party="Air", issue_date=dt.date(2026, 5, 1),
                           due_date=dt.date(2026, 5, 31), total=Decimal("8.00"), paid=Decimal("2.00"))
    await db.execute("DELETE FROM tenants WHERE id = $1", tenant_id)
    assert await finance.open_totals_kept(db, tenant_id) == {"party_name": {}, "due_date": {}, "issue_date": {}}
    kept = await assert_totals_follow_documents(db, other_id)
    assert kept["party_name"][("payables", "INR", "Air")] == (1, Decimal("6.00"))


async def test_truncating_documents_empties_their_kind_of_totals(db):
    tenant_id = await finance.new_tenant(db)
    accounts = await finance.chart(db, tenant_id)
    await finance.invoice(db, tenant_id, accounts, party="Asha", issue_date=dt.date(2026, 5, 1),
                          due_date=dt.date(2026, 5, 15), total=Decimal("12.00"))
    await finance.bill(db, tenant_id, accounts, party="Air", issue_date=dt.date(2026, 5, 1),
                       due_date=dt.date(2026, 5, 31), total=Decimal("8.00"))
    transaction = db.transaction()
    await transaction.start()
    try:  # rolled back: other tests' documents stay
        await db.execute("TRUNCATE invoices CASCADE")
        assert await db.fetchval("SELECT count(*) FROM open_document_parties WHERE kind = 'receivables'") == 0
        kept = await assert_totals_follow_documents(db, tenant_id)
        assert set(kept["party_name"]) == {("payables", "INR", "Air")}
    finally:
        await transaction.rollback()


async def _blocked(db, pid):
    """Wait until backend ``pid`` waits for a lock (the event the racing test needs), at most ~10 s."""
    for _ in range(1_000):
        if await db.fetchval("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the second writer never waited for the first")


async def test_a_new_document_waits_for_the_payment_that_empties_its_partys_row(db, queries, database):
    # The first writer pays Asha's only invoice (her rows reach zero and are deleted); the second, issuing her a
    # new invoice meanwhile, waits on that row, then inserts it afresh: one document, its amount.
    tenant_id = await finance.new_tenant(db)
    old = await _invoice(db, queries, tenant_id, "Asha", "50.00")
    second = await asyncpg.connect(database.dsn)
    try:
        payment = db.transaction()
        await payment.start()
        await payments.receive_invoice_payment(db, queries, tenant_id=tenant_id, invoice_id=old,
                                               amount=Decimal("50.00"), paid_at=NOW)
        issuing = asyncio.create_task(_invoice(second, queries, tenant_id, "Asha", "20.00"))
        await _blocked(db, second.get_server_pid())
        await payment.commit()
        await issuing
    finally:
        await second.close()
    kept = await assert_totals_follow_documents(db, tenant_id)
    assert kept["party_name"] == {("receivables", "INR", "Asha"): (1, Decimal("20.00"))}


async def test_a_change_the_triggers_missed_stops_the_next_write(db, queries):
    # With triggers off (a restore or replication session), an open invoice appears without its totals; paying
    # it would take its party below zero, so the statement fails instead of storing wrong totals.
    tenant_id = await finance.new_tenant(db)
    accounts = await finance.chart(db, tenant_id)
    async with db.transaction():
        await db.execute("SET LOCAL session_replication_role = replica")
        doc_id = await finance.invoice(db, tenant_id, accounts, party="Asha", issue_date=dt.date(2026, 5, 1),
                                       due_date=dt.date(2026, 5, 15), total=Decimal("12.00"))
    with pytest.raises(asyncpg.RaiseError, match="open_document_parties out of step"):
        await db.execute("UPDATE invoices SET status = 'paid', amount_paid = total_amount WHERE id = $1", doc_id)
