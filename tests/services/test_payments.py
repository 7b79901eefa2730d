"""Payments against invoices and bills (voyagent.services.payments): statuses, amounts and balanced entries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tests import finance
from voyagent.errors import ApiError
from voyagent.ids import new_id
from voyagent.services import billing, payments

PAID_AT = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc)


async def invoice(db, queries, tenant_id, amount="1000.00"):
    posting = billing.Posting(new_id(), "issue_invoice:ap-test", PAID_AT - dt.timedelta(days=20))
    async with db.transaction():
        made = await billing.create_invoice(db, queries, tenant_id=tenant_id, party_name="Asha Rao",
                                            party_reference="s", amount=Decimal(amount), currency="INR",
                                            posting=posting)
    return made["invoice_id"]


async def bill(db, queries, tenant_id, amount="800.00"):
    posting = billing.Posting(new_id(), "book_offer:ap-test", PAID_AT - dt.timedelta(days=20))
    async with db.transaction():
        made = await billing.create_bill(db, queries, tenant_id=tenant_id, party_name="IndiGo", party_reference="s",
                                         vendor_reference=new_id().hex[:6], amount=Decimal(amount), currency="INR",
                                         posting=posting)
    return made["bill_id"]


async def balances(db, tenant_id):
    rows = await db.fetch("SELECT a.code, sum(j.debit) - sum(j.credit) AS balance FROM journal_entries j "
                          "JOIN ledger_accounts a ON a.id = j.account_id WHERE j.tenant_id = $1 GROUP BY a.code",
                          tenant_id)
    return {row["code"]: row["balance"] for row in rows}


async def test_a_part_payment_then_the_rest_settles_an_invoice_through_cash(db, queries):
    tenant_id = await finance.new_tenant(db)
    invoice_id = await invoice(db, queries, tenant_id)
    async with db.transaction():
        status = await payments.receive_invoice_payment(db, queries, tenant_id=tenant_id, invoice_id=invoice_id,
                                                        amount=Decimal("400.00"), paid_at=PAID_AT)
    assert status == "partially_paid"
    assert await balances(db, tenant_id) == {"1000": Decimal("400.00"), "1200": Decimal("600.00"),
                                             "4000": Decimal("-1000.00")}
    async with db.transaction():
        status = await payments.receive_invoice_payment(db, queries, tenant_id=tenant_id, invoice_id=invoice_id,
                                                        amount=Decimal("600.00"), paid_at=PAID_AT)
    row = await db.fetchrow("SELECT status::text, amount_paid FROM invoices WHERE id = $1", invoice_id)
    assert (status, row["status"], row["amount_paid"]) == ("paid", "paid", Decimal("1000.00"))
    assert (await balances(db, tenant_id))["1200"] == Decimal("0.00")
    posted = await db.fetchval("SELECT DISTINCT posted_at FROM journal_entries WHERE source LIKE 'payment:%' "
                               "AND tenant_id = $1", tenant_id)
    assert posted == PAID_AT


async def test_a_bill_part_paid_is_scheduled_and_paid_in_full_is_paid(db, queries):
    tenant_id = await finance.new_tenant(db)
    bill_id = await bill(db, queries, tenant_id)
    async with db.transaction():
        first = await payments.pay_bill(db, queries, tenant_id=tenant_id, bill_id=bill_id, amount=Decimal("300.00"),
                                        paid_at=PAID_AT)
        second = await payments.pay_bill(db, queries, tenant_id=tenant_id, bill_id=bill_id,
                                         amount=Decimal("500.00"), paid_at=PAID_AT)
    assert (first, second) == ("scheduled", "paid")
    assert await balances(db, tenant_id) == {"1000": Decimal("-800.00"), "2100": Decimal("0.00"),
                                             "5000": Decimal("800.00")}


@pytest.mark.parametrize("amount", ["0.00", "-1.00", "1000.01"])
async def test_a_payment_of_nothing_or_more_than_is_owed_is_refused_and_changes_nothing(db, queries, amount):
    tenant_id = await finance.new_tenant(db)
    invoice_id = await invoice(db, queries, tenant_id)
    with pytest.raises(ApiError) as refused:
        async with db.transaction():
            await payments.receive_invoice_payment(db, queries, tenant_id=tenant_id, invoice_id=invoice_id,
                                                   amount=Decimal(amount), paid_at=PAID_AT)
    assert (refused.value.status, refused.value.detail) == (422, "invalid_payment_amount")
    assert await db.fetchval("SELECT amount_paid FROM invoices WHERE id = $1", invoice_id) == Decimal("0.00")


async def test_a_paid_or_foreign_document_cannot_be_paid(db, queries):
    tenant_id, other = await finance.new_tenant(db), await finance.new_tenant(db)
    invoice_id = await invoice(db, queries, tenant_id, "10.00")
    async with db.transaction():
        await payments.receive_invoice_payment(db, queries, tenant_id=tenant_id, invoice_id=invoice_id,
                                               amount=Decimal("10.00"), paid_at=PAID_AT)
    for tenant in (tenant_id, other):
        with pytest.raises(ApiError) as refused:
            async with db.transaction():
                await payments.receive_invoice_payment(db, queries, tenant_id=tenant, invoice_id=invoice_id,
                                                       amount=Decimal("1.00"), paid_at=PAID_AT)
        assert refused.value.detail == "document_not_payable"
