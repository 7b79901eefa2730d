"""A year of enquiries, created by the enquiry service the API uses, then dated across the year.

The API stamps ``created_at`` with the time of the request; a demo that makes a year in a minute sets it
afterwards, in one statement (sql/demo.sql), so lists, filters and the dashboard have a past to show.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from voyagent.demo import plan
from voyagent.demo.people import Agency
from voyagent.services import enquiries

BATCH = 250  # enquiries per transaction


def enquiry_body(rng: random.Random, created_at: dt.datetime) -> dict[str, Any]:
    name = plan.customer_name(rng)
    origin, destination = rng.choice(plan.ROUTES)
    depart = created_at.date() + dt.timedelta(days=rng.randrange(7, 120))
    body: dict[str, Any] = {
        "customer_name": name, "customer_email": plan.email_of(name, rng),
        "customer_phone": f"+91 9{rng.randrange(100000000, 999999999)}", "origin": origin,
        "destination": destination, "depart_date": depart.isoformat(),
        "pax_count": rng.choice((1, 1, 2, 2, 2, 3, 4, 5)), "status": rng.choices(plan.STATUSES, plan.STATUS_WEIGHTS)[0],
        "notes": rng.choice(plan.NOTES),
    }
    if rng.random() < 0.7:
        body["return_date"] = (depart + dt.timedelta(days=rng.randrange(3, 21))).isoformat()
    if rng.random() < 0.6:
        body["budget_amount"] = str(Decimal(rng.randrange(40, 600) * 1000))
        body["budget_currency"] = "INR"
    return body


async def create_enquiries(database: Any, sql: Any, agency: Agency, count: int, rng: random.Random,
                           now: dt.datetime, step: Any) -> list[tuple[Any, dt.datetime]]:
    """``count`` enquiries by the agency's staff (viewers do not create), oldest first: each row with the time
    it was dated to."""
    creators = [m.user_id for m in agency.members if m.role != "viewer"]
    moments = sorted(plan.moment_in_past_year(rng, now) for _ in range(count))
    made: list[tuple[Any, dt.datetime]] = []
    for start in range(0, count, BATCH):
        batch = moments[start:start + BATCH]
        async with database.transaction() as conn:
            for created_at in batch:
                row = await enquiries.create_enquiry(conn, sql, tenant_id=agency.tenant_id,
                                                     user_id=rng.choice(creators), body=enquiry_body(rng, created_at))
                made.append((row, created_at))
            await sql.demo_date_enquiries(conn, tenant_id=agency.tenant_id,
                                          ids=[row["id"] for row, _ in made[start:]], created_at=batch)
        step.advance(len(batch))
    return made
