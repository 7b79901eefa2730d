"""Finance reports (endpoints.md, Reports; data-model.md, Aging and Trial balance).

Each report is one SQL statement (sql/reports.sql) that already returns the buckets, totals and top parties,
so the numbers come from one snapshot; this module only checks the period and shapes the rows into the
contract's objects. "Today" is a parameter so a caller (and the tests) can pin the date aging is measured on.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import asyncpg

from voyagent.errors import ApiError

BUCKETS = ("0-30", "31-60", "61-90", "90+")
PARTIES_KEY = {"receivables": "top_debtors", "payables": "top_creditors"}


def utc_today() -> dt.date:
    """Today's date in UTC, the date aging and the trial balance's default cut-off are measured on."""
    return dt.datetime.now(dt.timezone.utc).date()


def _money(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency}



async def aging(conn: asyncpg.Connection, sql: Any, *, kind: str, tenant_id: uuid.UUID, date_from: dt.date,
                date_to: dt.date, currency: str | None, today: dt.date) -> dict[str, Any]:
    """The AgingReport of the tenant's open invoices (``kind="receivables"``, ``top_debtors`` filled) or open
    bills (``kind="payables"``, ``top_creditors`` filled); ``invalid_period`` when ``date_from > date_to``."""
    if date_from > date_to:
        raise ApiError(422, "invalid_period")
    row = await sql.get_aging(conn, kind=kind, tenant_id=tenant_id, from_date=date_from, to_date=date_to,
                              currency=currency, today=today)
    report_currency = row["currency"]
    report = {
        "tenant_id": str(tenant_id),
        "period": {"from": date_from.isoformat(), "to": date_to.isoformat()},
        "total_outstanding": _money(row["total_outstanding"], report_currency),
        "aging_buckets": [{"bucket": name, "count": count, "amount": _money(amount, report_currency)}
                          for name, count, amount in zip(BUCKETS, row["bucket_counts"], row["bucket_amounts"])],
        "top_debtors": [],
        "top_creditors": [],
    }
    report[PARTIES_KEY[kind]] = [{"name": name, "amount": _money(amount, report_currency)}
                                 for name, amount in zip(row["party_names"], row["party_amounts"])]
    return report


async def trial_balance(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, as_of: dt.date,
                        include_zero: bool) -> dict[str, Any]:
    """The TrialBalance object: accounts by code, totals over the listed ones, ``in_balance``."""
    row = await sql.get_trial_balance(conn, tenant_id=tenant_id, as_of=as_of, include_zero=include_zero)
    accounts = [{"code": code, "name": name, "type": kind, "debit": debit, "credit": credit,
                 "balance": debit - credit, "currency": currency}
                for code, name, kind, debit, credit, currency in zip(row["codes"], row["names"], row["types"],
                                                                     row["debits"], row["credits"],
                                                                     row["currencies"])]
    return {
        "tenant_id": str(tenant_id),
        "as_of": as_of.isoformat(),
        "accounts": accounts,
        "total_debit": row["total_debit"],
        "total_credit": row["total_credit"],
        "in_balance": row["total_debit"] == row["total_credit"],
    }
