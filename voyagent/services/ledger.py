"""The agent's double-entry postings (data-model.md, Double-entry ledger): the default chart and balanced entries.

The posting rules are checked here before any insert (a violation is a programming error and aborts the caller's
transaction); migration 0006 checks them again at commit, so nothing unbalanced is ever stored.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import uuid
from typing import Any, Sequence

import asyncpg

from voyagent.ids import new_id

DEFAULT_CHART = (("1200", "Accounts Receivable", "asset"), ("2100", "Accounts Payable", "liability"),
                 ("4000", "Travel Sales", "revenue"), ("5000", "Cost of Travel Sales", "expense"))
RECEIVABLE, PAYABLE, SALES, COST_OF_SALES = "1200", "2100", "4000", "5000"
_CENT = decimal.Decimal("0.01")


class PostingError(ValueError):
    """An entry that breaks a posting rule (a bug in the caller)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Line:
    """One side of an entry: an account code and a non-negative debit or credit."""

    code: str
    debit: decimal.Decimal = decimal.Decimal(0)
    credit: decimal.Decimal = decimal.Decimal(0)


async def ensure_chart(conn: asyncpg.Connection, sql: Any, tenant_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """The tenant's default accounts by code, inserted when missing (existing accounts are left as they are)."""
    codes = [code for code, _, _ in DEFAULT_CHART]
    await sql.ensure_default_chart(conn, tenant_id=tenant_id, ids=[new_id() for _ in DEFAULT_CHART], codes=codes,
                                   names=[name for _, name, _ in DEFAULT_CHART],
                                   types=[kind for _, _, kind in DEFAULT_CHART])
    rows = await sql.get_ledger_accounts(conn, tenant_id=tenant_id, codes=codes)
    return {row["code"]: row["id"] for row in rows}


def checked_lines(lines: Sequence[Line]) -> list[Line]:
    """The lines quantised to cents, after posting rules 1–3: two or more, one side each, balanced."""
    if len(lines) < 2:
        raise PostingError("an entry has at least two lines")
    quantised = [Line(line.code, line.debit.quantize(_CENT), line.credit.quantize(_CENT)) for line in lines]
    for line in quantised:
        if line.debit < 0 or line.credit < 0 or (line.debit > 0) == (line.credit > 0):
            raise PostingError(f"line on {line.code}: exactly one of debit and credit is positive")
    if sum(line.debit for line in quantised) != sum(line.credit for line in quantised):
        raise PostingError("debits and credits differ")
    return quantised


async def post_entry(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, accounts: dict[str, uuid.UUID],
                     lines: Sequence[Line], currency: str, posted_at: dt.datetime, source: str,
                     memo: str | None) -> uuid.UUID:
    """Insert one balanced entry on the tenant's ``accounts`` (by code) in the caller's transaction."""
    checked = checked_lines(lines)
    entry_id = new_id()
    await sql.insert_journal_lines(
        conn, entry_id=entry_id, tenant_id=tenant_id, currency=currency, memo=memo, posted_at=posted_at,
        source=source, line_nos=list(range(1, len(checked) + 1)),
        account_ids=[accounts[line.code] for line in checked], debits=[line.debit for line in checked],
        credits=[line.credit for line in checked])
    return entry_id


async def post_transfer(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, debit: str, credit: str,
                        amount: decimal.Decimal, currency: str, posted_at: dt.datetime, source: str,
                        memo: str | None) -> uuid.UUID:
    """Dr ``debit`` / Cr ``credit`` for ``amount``, the default chart ensured first (the agent's two postings)."""
    accounts = await ensure_chart(conn, sql, tenant_id)
    return await post_entry(conn, sql, tenant_id=tenant_id, accounts=accounts,
                            lines=[Line(debit, debit=amount), Line(credit, credit=amount)], currency=currency,
                            posted_at=posted_at, source=source, memo=memo)
