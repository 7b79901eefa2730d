"""The ceiling for the finance reports: bench/ceiling.py plus bare routes running exactly our SQL.

    python -m bench.ceiling_reports --port 8100 --dsn postgresql://…

``GET /reports/{receivables,payables}?tenant_id=…&from=…&to=…`` and ``GET /reports/trial-balance?tenant_id=…``
— no authentication, no validation; the named statements of sql/reports.sql with the same parameters, the
row turned into the same JSON shape by orjson.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import orjson
from aiohttp import web

from bench import ceiling
from voyagent.queries import load_file
from voyagent.resources import sql_dir

SQL = {q.name: q for q in load_file(sql_dir() / "reports.sql")}
BUCKETS = ("0-30", "31-60", "61-90", "90+")
PARTIES = {"receivables": "top_debtors", "payables": "top_creditors"}


def _default(value: object) -> object:
    if isinstance(value, decimal.Decimal):
        return str(value.quantize(decimal.Decimal("0.01")))
    raise TypeError


def _json(body: dict) -> web.Response:
    return web.Response(body=orjson.dumps(body, default=_default), content_type="application/json")


def aging(kind: str):
    async def handler(request: web.Request) -> web.Response:
        tenant_id = uuid.UUID(request.query["tenant_id"])
        date_from = dt.date.fromisoformat(request.query["from"])
        date_to = dt.date.fromisoformat(request.query["to"])
        query = SQL["get_aging"]
        async with request.app[ceiling.POOL].acquire() as conn:
            row = await query(conn, kind=kind, tenant_id=tenant_id, from_date=date_from, to_date=date_to,
                                       currency=None, today=dt.datetime.now(dt.timezone.utc).date())
        cur = row["currency"]
        body = {"tenant_id": str(tenant_id), "period": {"from": str(date_from), "to": str(date_to)},
                "total_outstanding": {"amount": row["total_outstanding"], "currency": cur},
                "aging_buckets": [{"bucket": b, "count": c, "amount": {"amount": a, "currency": cur}}
                                  for b, c, a in zip(BUCKETS, row["bucket_counts"], row["bucket_amounts"])],
                "top_debtors": [], "top_creditors": []}
        body[PARTIES[kind]] = [{"name": n, "amount": {"amount": a, "currency": cur}}
                               for n, a in zip(row["party_names"], row["party_amounts"])]
        return _json(body)

    return handler


async def trial_balance(request: web.Request) -> web.Response:
    tenant_id = uuid.UUID(request.query["tenant_id"])
    as_of = dt.datetime.now(dt.timezone.utc).date()
    async with request.app[ceiling.POOL].acquire() as conn:
        row = await SQL["get_trial_balance"](conn, tenant_id=tenant_id, as_of=as_of, include_zero=False)
    accounts = [{"code": c, "name": n, "type": t, "debit": d, "credit": k, "balance": d - k, "currency": cur}
                for c, n, t, d, k, cur in zip(row["codes"], row["names"], row["types"], row["debits"],
                                              row["credits"], row["currencies"])]
    return _json({"tenant_id": str(tenant_id), "as_of": str(as_of), "accounts": accounts,
                  "total_debit": row["total_debit"], "total_credit": row["total_credit"],
                  "in_balance": row["total_debit"] == row["total_credit"]})


ceiling.ROUTES += [("GET", "/reports/receivables", aging("receivables")),
                   ("GET", "/reports/payables", aging("payables")),
                   ("GET", "/reports/trial-balance", trial_balance)]

if __name__ == "__main__":
    ceiling.main()
