"""The aging services on a pinned "today": the bucket edges 30/31, 60/61, 90/91 and documents not yet due."""

import datetime as dt
from decimal import Decimal

import pytest

from tests import finance
from voyagent.errors import ApiError
from voyagent.services import reports

TODAY = dt.date(2026, 6, 15)
EDGES = {-30: "0-30", -1: "0-30", 0: "0-30", 1: "0-30", 30: "0-30", 31: "31-60", 60: "31-60", 61: "61-90",
         90: "61-90", 91: "90+", 365: "90+"}


@pytest.mark.parametrize("kind", ["invoice", "bill"])
async def test_each_edge_day_falls_in_its_bucket(db, queries, kind):
    tenant_id = await finance.new_tenant(db)
    accounts = await finance.chart(db, tenant_id)
    add = finance.invoice if kind == "invoice" else finance.bill
    report_kind = "receivables" if kind == "invoice" else "payables"
    for overdue in EDGES:
        await add(db, tenant_id, accounts, party=f"overdue {overdue}", issue_date=dt.date(2025, 1, 1),
                  due_date=TODAY - dt.timedelta(days=overdue), total=Decimal("1.00"))
    report = await reports.aging(db, queries, kind=report_kind, tenant_id=tenant_id, date_from=dt.date(2025, 1, 1),
                         date_to=dt.date(2025, 1, 1), currency=None, today=TODAY)
    for overdue, bucket in EDGES.items():  # alone in a report, each document lands in exactly its bucket
        alone = await finance.new_tenant(db)
        await add(db, alone, await finance.chart(db, alone), party="x", issue_date=dt.date(2025, 1, 1),
                  due_date=TODAY - dt.timedelta(days=overdue), total=Decimal("1.00"))
        single = await reports.aging(db, queries, kind=report_kind, tenant_id=alone, date_from=dt.date(2025, 1, 1),
                             date_to=dt.date(2025, 1, 1), currency=None, today=TODAY)
        counts = {b["bucket"]: b["count"] for b in single["aging_buckets"]}
        assert counts == {b: int(b == bucket) for b in reports.BUCKETS}, overdue
    expected = {b: sum(1 for v in EDGES.values() if v == b) for b in reports.BUCKETS}
    assert [(b["bucket"], b["count"], b["amount"]["amount"]) for b in report["aging_buckets"]] == [
        (b, expected[b], Decimal(expected[b])) for b in reports.BUCKETS]


async def test_from_after_to_raises_invalid_period_before_reading(db, queries):
    with pytest.raises(ApiError) as raised:
        await reports.aging(db, queries, kind="receivables", tenant_id=await finance.new_tenant(db),
                            date_from=dt.date(2026, 1, 2), date_to=dt.date(2026, 1, 1), currency=None, today=TODAY)
    assert (raised.value.status, raised.value.detail) == (422, "invalid_period")
