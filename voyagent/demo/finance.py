"""Customers pay their invoices and the agency pays its suppliers, some in full, some in part, some not yet,
so that the aging reports have something in every bucket and the trial balance has a cash account."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from voyagent.demo.people import Agency
from voyagent.services import payments

_CENT = Decimal("0.01")


def payment_plan(rng: random.Random, due: dt.date, today: dt.date) -> str:
    """``full``, ``part`` or ``none``: older documents are more likely paid, recent ones rarely."""
    overdue = (today - due).days
    draw = rng.random()
    if overdue > 90:
        return "full" if draw < 0.6 else "part" if draw < 0.8 else "none"
    if overdue > 0:
        return "full" if draw < 0.3 else "part" if draw < 0.6 else "none"
    return "part" if draw < 0.2 else "none"


async def settle(database: Any, sql: Any, agency: Agency, rng: random.Random, now: dt.datetime, step: Any) -> int:
    """Pay the tenant's open documents per ``payment_plan``; the number of payments made."""
    async with database.connection() as conn:
        documents = await sql.demo_open_documents(conn, tenant_id=agency.tenant_id)
    made = 0
    for document in documents:
        plan = payment_plan(rng, document["due_date"], now.date())
        step.advance()
        if plan == "none":
            continue
        total = document["total_amount"]
        amount = total if plan == "full" else (total * Decimal(rng.randrange(25, 75)) / 100).quantize(_CENT)
        day = max(document["issue_date"], document["due_date"] - dt.timedelta(days=rng.randrange(0, 12)))
        paid_at = min(dt.datetime.combine(day, dt.time(6, 30), dt.timezone.utc), now)
        pay = payments.receive_invoice_payment if document["kind"] == "invoice" else payments.pay_bill
        key = "invoice_id" if document["kind"] == "invoice" else "bill_id"
        async with database.transaction() as conn:
            await pay(conn, sql, tenant_id=agency.tenant_id, amount=amount, paid_at=paid_at,
                      **{key: document["id"]})
        made += 1
    return made
