"""The documents the agent creates (chat-and-agent.md §9.4–§9.5): a supplier's bill for a booking and a
customer's invoice, each numbered per tenant and posted to the ledger in the caller's transaction.

Numbers are ``BILL-<T8>-<NNNN>`` / ``INV-<T8>-<NNNN>`` (data-model.md, Document numbering): one more than the
tenant's highest of that shape. Two transactions may count the same number; the insert of the later one then
returns nothing (``ON CONFLICT`` on the number waits for the first to commit) and it counts again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import uuid
from typing import Any

import asyncpg

from voyagent.services import ledger
from voyagent.services.itinerary import money

BILL_DUE_DAYS = 30
INVOICE_DUE_DAYS = 14
MAX_NUMBER_ATTEMPTS = 100  # each lost race means another document committed meanwhile


@dataclasses.dataclass(frozen=True, slots=True)
class Posting:
    """A document's id (chosen by the caller, so the tool's audit row can name it from the start), the ``source``
    of its journal entry (``<tool>:<approval id>``) and the execution time (``posted_at``; ``today`` its UTC date)."""

    document_id: uuid.UUID
    source: str
    posted_at: dt.datetime

    @property
    def today(self) -> dt.date:
        return self.posted_at.astimezone(dt.timezone.utc).date()


@dataclasses.dataclass(frozen=True, slots=True)
class _Kind:
    prefix: str
    next_sequence: str  # named queries
    insert: str
    id_key: str
    due_days: int
    debit: str  # account codes of its journal entry
    credit: str


BILL = _Kind("BILL", "next_bill_sequence", "insert_bill", "bill_id", BILL_DUE_DAYS, ledger.COST_OF_SALES,
             ledger.PAYABLE)
INVOICE = _Kind("INV", "next_invoice_sequence", "insert_invoice", "invoice_id", INVOICE_DUE_DAYS, ledger.RECEIVABLE,
                ledger.SALES)


def number_prefix(prefix: str, tenant_id: uuid.UUID) -> str:
    """``BILL-<T8>-`` / ``INV-<T8>-``: ``<T8>`` the tenant id's first 8 hex digits, upper-cased."""
    return f"{prefix}-{tenant_id.hex[:8].upper()}-"


async def _create(conn: asyncpg.Connection, sql: Any, kind: _Kind, *, tenant_id: uuid.UUID, amount: decimal.Decimal,
                  currency: str, posting: Posting, **columns: Any) -> dict[str, Any]:
    prefix = number_prefix(kind.prefix, tenant_id)
    today = posting.today
    for _ in range(MAX_NUMBER_ATTEMPTS):
        sequence = await getattr(sql, kind.next_sequence)(conn, tenant_id=tenant_id, prefix=prefix)
        row = await getattr(sql, kind.insert)(
            conn, id=posting.document_id, tenant_id=tenant_id, number=f"{prefix}{int(sequence):04d}", issue_date=today,
            due_date=today + dt.timedelta(days=kind.due_days), total_amount=amount, currency=currency, **columns)
        if row is not None:
            break
    else:
        raise RuntimeError(f"no free document number after {MAX_NUMBER_ATTEMPTS} attempts ({prefix})")
    await ledger.post_transfer(conn, sql, tenant_id=tenant_id, debit=kind.debit, credit=kind.credit, amount=amount,
                               currency=currency, posted_at=posting.posted_at, source=posting.source,
                               memo=row["number"])
    return {kind.id_key: str(row["id"]), "number": row["number"], "party_name": row["party_name"],
            "amount": money(row["total_amount"], row["currency"]), "issue_date": row["issue_date"],
            "due_date": row["due_date"], "status": row["status"]}


async def create_bill(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, party_name: str,
                      party_reference: str, vendor_reference: str, amount: decimal.Decimal, currency: str,
                      posting: Posting) -> dict[str, Any]:
    """A ``received`` bill due in 30 days, posted Dr 5000 / Cr 2100: the ``bill`` object of book_offer's output."""
    return await _create(conn, sql, BILL, tenant_id=tenant_id, amount=amount, currency=currency, posting=posting,
                         party_name=party_name, party_reference=party_reference, vendor_reference=vendor_reference)


async def create_invoice(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, party_name: str,
                         party_reference: str, amount: decimal.Decimal, currency: str,
                         posting: Posting) -> dict[str, Any]:
    """An ``issued`` invoice due in 14 days, posted Dr 1200 / Cr 4000: the ``invoice`` object of issue_invoice's
    output (without ``offer_ids``)."""
    return await _create(conn, sql, INVOICE, tenant_id=tenant_id, amount=amount, currency=currency, posting=posting,
                         party_name=party_name, party_reference=party_reference)
