"""Finance reports benchmark: 100,000 invoices, 100,000 bills and 500,000 journal lines in one tenant plus 50
small tenants (2,000 documents and 2,000 lines each), one worker.

    .venv/bin/python -m bench.reports_bench [--reseed] [--seconds 10] [--rounds 2] [--connections 8]

Seeds a scratch database (COPY; the ledger's deferred entry check of migration 0006 stays on, so the seed time
includes it) unless it is already there, runs ``voyagent serve`` (one worker, user bucket off) and the ceiling
(bench/ceiling_reports.py: bare aiohttp + asyncpg, the same statements) and drives both alternately with the
load driver of bench/enquiries_bench.py. Per report: rps and p50/p99 under ``--connections`` clients, one
client's p50/p99, and the ratio to the ceiling. Targets: ratio ≥ 0.7, p50 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import time
from decimal import Decimal
from urllib.parse import urlencode

import asyncpg

from bench.enquiries_bench import bench_pair, print_pair
from bench.harness import ADMIN_DSN, SECRET, ceiling_server, load_arguments, voyagent_server
from voyagent.config import Settings
from voyagent.ids import new_id
from voyagent.migrations import migrate_dsn
from voyagent.services.tokens import mint_access_token

DEFAULT_DSN = ADMIN_DSN.rsplit("/", 1)[0] + "/voyagent_bench_reports"
EMAIL = "bench-reports@example.com"
CHART = (("1000", "Cash", "asset"), ("1200", "Accounts Receivable", "asset"),
         ("2100", "Accounts Payable", "liability"), ("4000", "Travel Sales", "revenue"),
         ("5000", "Cost of Travel Sales", "expense"))
PAIRS = (("1200", "4000"), ("5000", "2100"), ("1000", "1200"), ("2100", "1000"))
DOC_COLUMNS = ["id", "tenant_id", "number", "party_name", "issue_date", "due_date", "total_amount", "currency",
               "amount_paid", "status"]
LINE_COLUMNS = ["entry_id", "line_no", "tenant_id", "account_id", "debit", "credit", "currency", "posted_at",
                "source"]
TODAY = dt.datetime.now(dt.timezone.utc).date()


async def _seed_tenant(conn: asyncpg.Connection, documents: int, lines: int, rnd: random.Random) -> dict:
    tenant_id, user_id = new_id(), new_id()
    await conn.execute("INSERT INTO tenants (id, display_name) VALUES ($1, 'Bench')", tenant_id)
    await conn.execute("INSERT INTO tenant_settings (tenant_id) VALUES ($1)", tenant_id)
    accounts = {}
    for code, name, kind in CHART:
        accounts[code] = new_id()
        await conn.execute("INSERT INTO ledger_accounts (id, tenant_id, code, name, type) VALUES ($1, $2, $3, $4, "
                           "$5::ledger_account_type)", accounts[code], tenant_id, code, name, kind)
    for table, statuses in (("invoices", ("issued", "issued", "partially_paid", "paid", "draft", "void")),
                            ("bills", ("received", "received", "scheduled", "paid", "draft", "void"))):
        rows = []
        for i in range(documents):
            issue = TODAY - dt.timedelta(days=rnd.randrange(365))
            total = Decimal(rnd.randrange(1_000, 50_000_000)).scaleb(-2)
            status = rnd.choice(statuses)
            paid = (total / 3).quantize(Decimal("0.01")) if status == "partially_paid" else Decimal(0)
            rows.append((new_id(), tenant_id, f"{table[:3].upper()}-{i:07d}", f"Party {rnd.randrange(2_000):04d}",
                         issue, issue + dt.timedelta(days=rnd.randrange(15, 60)), total,
                         "INR" if rnd.random() < 0.9 else "USD", paid, status)
                        + ((f"V-{i:07d}",) if table == "bills" else ()))
        await conn.copy_records_to_table(table, records=rows,
                                         columns=DOC_COLUMNS + (["vendor_reference"] if table == "bills" else []))
    for start in range(0, lines // 2, 25_000):
        batch = []
        for _ in range(min(25_000, lines // 2 - start)):
            entry_id, (debit, credit) = new_id(), rnd.choice(PAIRS)
            amount = Decimal(rnd.randrange(1_000, 5_000_000)).scaleb(-2)
            posted = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=rnd.randrange(365 * 86_400))
            batch.append((entry_id, 1, tenant_id, accounts[debit], amount, Decimal(0), "INR", posted, "bench"))
            batch.append((entry_id, 2, tenant_id, accounts[credit], Decimal(0), amount, "INR", posted, "bench"))
        async with conn.transaction():
            await conn.copy_records_to_table("journal_entries", records=batch, columns=LINE_COLUMNS)
    return {"tenant_id": tenant_id, "user_id": user_id}


async def seed(dsn: str, tenants: int) -> dict:
    name = dsn.rsplit("/", 1)[1]
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    await migrate_dsn(dsn)
    conn = await asyncpg.connect(dsn)
    rnd = random.Random(12)
    started = time.perf_counter()
    try:
        big = await _seed_tenant(conn, 100_000, 500_000, rnd)
        await conn.execute("INSERT INTO users (id, tenant_id, email, display_name, role) VALUES "
                           "($1, $2, $3, 'Bench', 'agency_admin')", big["user_id"], big["tenant_id"], EMAIL)
        for _ in range(tenants):
            await _seed_tenant(conn, 2_000, 2_000, rnd)
        seeded = time.perf_counter() - started
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return {"seconds": round(seeded, 1), "vacuum_analyze_seconds": round(time.perf_counter() - started - seeded, 1)}


async def _ready(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn)
    except (asyncpg.InvalidCatalogNameError, OSError):
        return False
    try:
        return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users WHERE email = $1)", EMAIL))
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> dict:
    results: dict = {}
    if args.reseed or not await _ready(args.dsn):
        results["seed"] = await seed(args.dsn, args.tenants)
        print("seeded:", results["seed"], flush=True)
    conn = await asyncpg.connect(args.dsn)
    user = await conn.fetchrow("SELECT id, tenant_id, email FROM users WHERE email = $1", EMAIL)
    await conn.close()
    token, _, _ = mint_access_token(Settings(auth_secret=SECRET), user_id=user["id"], tenant_id=user["tenant_id"],
                                    role="agency_admin", email=user["email"])
    headers = {"Authorization": f"Bearer {token}"}
    period = {"from": (TODAY - dt.timedelta(days=365)).isoformat(), "to": TODAY.isoformat()}
    with voyagent_server(args.dsn, VOYAGENT_RATE_LIMIT_USER_PER_MINUTE="0", VOYAGENT_WORKERS="1") as ours, \
            ceiling_server(args.dsn, module="bench.ceiling_reports") as bare:
        for path, params in (("/reports/receivables", period), ("/reports/payables", period),
                             ("/reports/trial-balance", {})):
            ours_url = f"{ours}{path}?{urlencode(params)}" if params else f"{ours}{path}"
            bare_url = f"{bare}{path}?{urlencode({'tenant_id': str(user['tenant_id']), **params})}"
            results[path] = await bench_pair(ours_url, bare_url, headers, args)
            print_pair(f"GET {path} (one year, 100,000 documents / 500,000 lines)", results[path])
            p50 = results[path]["ours_alone"].p50_ms
            print(f"  p50 (1 client) {p50:.2f} ms (target < 50: {'met' if p50 < 50 else 'MISSED'})", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    load_arguments(parser, DEFAULT_DSN)
    parser.add_argument("--tenants", type=int, default=50, help="small tenants besides the measured one")
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
