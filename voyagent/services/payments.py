"""Payments received for invoices and made for bills, with their ledger entries.

No endpoint records a payment (data-model.md: statuses past ``issued`` / ``received`` "exist for data entered by
other means"); the demo agency enters its payments through here. A payment is the usual entry against a cash
account, which the default chart lacks, so ``1000 Cash at Bank`` is added on first use:
a customer pays → Dr 1000 / Cr 1200; the agency pays a supplier → Dr 2100 / Cr 1000.
A part payment leaves an invoice ``partially_paid`` and a bill ``scheduled`` (the rest is scheduled to be paid).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import uuid
from typing import Any

import asyncpg

from voyagent.errors import ApiError
from voyagent.ids import new_id
from voyagent.services import ledger

CASH = ("1000", "Cash at Bank", "asset")


@dataclasses.dataclass(frozen=True, slots=True)
class _Document:
    lock: str
    update: str
    paid_status: str
    part_paid_status: str
    debit: str
    credit: str


INVOICE = _Document("lock_open_invoice", "set_invoice_paid", "paid", "partially_paid", CASH[0], ledger.RECEIVABLE)
BILL = _Document("lock_open_bill", "set_bill_paid", "paid", "scheduled", ledger.PAYABLE, CASH[0])


async def _pay(conn: asyncpg.Connection, sql: Any, kind: _Document, *, tenant_id: uuid.UUID, document_id: uuid.UUID,
               amount: decimal.Decimal, paid_at: dt.datetime) -> str:
    document = await getattr(sql, kind.lock)(conn, id=document_id, tenant_id=tenant_id)
    if document is None:
        raise ApiError(409, "document_not_payable")
    outstanding = document["total_amount"] - document["amount_paid"]
    if amount <= 0 or amount > outstanding:
        raise ApiError(422, "invalid_payment_amount")
    paid = document["amount_paid"] + amount
    status = kind.paid_status if paid == document["total_amount"] else kind.part_paid_status
    await getattr(sql, kind.update)(conn, id=document_id, tenant_id=tenant_id, amount_paid=paid, status=status,
                                    now=paid_at)
    await sql.ensure_default_chart(conn, tenant_id=tenant_id, ids=[new_id()], codes=[CASH[0]], names=[CASH[1]],
                                   types=[CASH[2]])
    accounts = await ledger.ensure_chart(conn, sql, tenant_id)
    accounts.update({row["code"]: row["id"] for row in await sql.get_ledger_accounts(
        conn, tenant_id=tenant_id, codes=[CASH[0]])})
    await ledger.post_entry(conn, sql, tenant_id=tenant_id, accounts=accounts,
                            lines=[ledger.Line(kind.debit, debit=amount), ledger.Line(kind.credit, credit=amount)],
                            currency=document["currency"], posted_at=paid_at, source=f"payment:{document['number']}",
                            memo=f"payment of {document['number']}")
    return status


async def receive_invoice_payment(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, invoice_id: uuid.UUID,
                                  amount: decimal.Decimal, paid_at: dt.datetime) -> str:
    """A customer's payment (caller's transaction): the invoice's new status."""
    return await _pay(conn, sql, INVOICE, tenant_id=tenant_id, document_id=invoice_id, amount=amount,
                      paid_at=paid_at)


async def pay_bill(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, bill_id: uuid.UUID,
                   amount: decimal.Decimal, paid_at: dt.datetime) -> str:
    """A payment to a supplier (caller's transaction): the bill's new status."""
    return await _pay(conn, sql, BILL, tenant_id=tenant_id, document_id=bill_id, amount=amount, paid_at=paid_at)
