"""What migration 0008's open-document totals cost the writes that keep them.

    python -m bench.aging_write_bench [--documents 1000] [--rounds 4]

On a scratch database, per round and with the invoice triggers on, then off (ALTER TABLE ... DISABLE TRIGGER;
the order alternates between rounds): ``--documents`` single-row INSERTs of open invoices and as many UPDATEs
(a part payment), each its own transaction; then a fifth of that many ``billing.create_invoice`` calls (number,
insert, ledger posting) and ``payments.receive_invoice_payment`` calls (lock, update, ledger posting), each in a
transaction as the agent and the demo make them. Prints the median per-call time over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import time
import uuid
from decimal import Decimal
from typing import Any

import asyncpg

from bench.harness import scratch_database
from voyagent.app import load_queries
from voyagent.ids import new_id
from voyagent.services import billing, payments

TRIGGERS = ("invoices_open_totals_insert", "invoices_open_totals_update", "invoices_open_totals_delete")
NOW = dt.datetime.now(dt.timezone.utc)


async def _triggers(conn: asyncpg.Connection, enabled: bool) -> None:
    for name in TRIGGERS:
        await conn.execute(f"ALTER TABLE invoices {'ENABLE' if enabled else 'DISABLE'} TRIGGER {name}")


async def _microseconds(calls: list[Any]) -> float:
    started = time.perf_counter()
    for call in calls:
        await call()
    return (time.perf_counter() - started) / len(calls) * 1e6


async def _round(conn: asyncpg.Connection, sql: Any, documents: int) -> dict[str, float]:
    tenant_id = new_id()
    await conn.execute("INSERT INTO tenants (id, display_name) VALUES ($1, 'Write bench')", tenant_id)
    ids = [new_id() for _ in range(documents)]

    def insert(i: int, doc_id: uuid.UUID):
        return lambda: conn.execute(
            "INSERT INTO invoices (id, tenant_id, number, party_name, issue_date, due_date, total_amount, currency, "
            "status) VALUES ($1, $2, $3, $4, $5, $6, 100, 'INR', 'issued')", doc_id, tenant_id, f"W-{doc_id.hex}",
            f"Party {i % 50}", NOW.date(), NOW.date() + dt.timedelta(days=i % 30))

    def part_pay(doc_id: uuid.UUID):
        return lambda: conn.execute("UPDATE invoices SET amount_paid = 40, status = 'partially_paid' WHERE id = $1",
                                    doc_id)

    made: list[uuid.UUID] = []

    async def create(i: int) -> None:
        async with conn.transaction():
            row = await billing.create_invoice(conn, sql, tenant_id=tenant_id, party_name=f"Party {i % 50}",
                                               party_reference="bench", amount=Decimal("100.00"), currency="INR",
                                               posting=billing.Posting(new_id(), f"bench:{uuid.uuid4()}", NOW))
        made.append(uuid.UUID(row["invoice_id"]))

    async def pay(doc_id: uuid.UUID) -> None:
        async with conn.transaction():
            await payments.receive_invoice_payment(conn, sql, tenant_id=tenant_id, invoice_id=doc_id,
                                                   amount=Decimal("100.00"), paid_at=NOW)

    services = documents // 5
    timings = {"insert": await _microseconds([insert(i, doc_id) for i, doc_id in enumerate(ids)]),
               "update": await _microseconds([part_pay(doc_id) for doc_id in ids]),
               "create_invoice": await _microseconds([lambda i=i: create(i) for i in range(services)])}
    timings["payment"] = await _microseconds([lambda d=d: pay(d) for d in made])
    return timings


async def run(dsn: str, documents: int, rounds: int) -> dict[bool, dict[str, float]]:
    sql = load_queries()
    conn = await asyncpg.connect(dsn)
    results: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    try:
        for number in range(rounds):
            for enabled in ((True, False) if number % 2 == 0 else (False, True)):
                await _triggers(conn, enabled)
                results[enabled].append(await _round(conn, sql, documents))
    finally:
        await _triggers(conn, True)
        await conn.close()
    return {enabled: {key: statistics.median(r[key] for r in rounds_) for key in rounds_[0]}
            for enabled, rounds_ in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    with scratch_database() as dsn:
        medians = asyncio.run(run(dsn, args.documents, args.rounds))
    for enabled in (False, True):
        print(f"triggers {'on ' if enabled else 'off'}  " + "  ".join(
            f"{key} {value:.0f} µs" for key, value in medians[enabled].items()))


if __name__ == "__main__":
    main()
