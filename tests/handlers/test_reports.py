"""GET /reports/receivables, /reports/payables and /reports/trial-balance through HTTP: the contract's shapes,
access, bad inputs and tenant isolation. Aging is measured on the real UTC date here, so documents sit well
inside their buckets; the edge days are pinned in tests/services/test_reports.py and the property tests."""

import datetime as dt
from decimal import Decimal

import pytest

from tests import finance

ROLES = ("agency_admin", "ticketing_lead", "accounting_lead", "agent", "viewer")
EMPTY_BUCKETS = [{"bucket": b, "count": 0, "amount": {"amount": "0.00", "currency": "INR"}}
                 for b in ("0-30", "31-60", "61-90", "90+")]
PERIOD = {"from": "2020-01-01", "to": "2030-12-31"}


def today():
    return dt.datetime.now(dt.timezone.utc).date()


def days_ago(n):
    return today() - dt.timedelta(days=n)


def inr(amount):
    return {"amount": amount, "currency": "INR"}


async def get(client, user, path, **params):
    response = await client.get(path, params=params, headers=user.headers)
    return response.status, await response.json()


async def test_receivables_buckets_totals_and_top_debtors(client, admin, db):
    accounts = await finance.chart(db, admin.tenant_id)
    for party, overdue, total, paid in [("Asha", 10, "100.00", "0"), ("Ravi", -5, "50.50", "0"),
                                        ("Meera", 45, "300.00", "100.00"), ("Omar", 75, "80.00", "0"),
                                        ("Lena", 200, "1000.00", "999.99"), ("Asha", 120, "20.00", "0")]:
        await finance.invoice(db, admin.tenant_id, accounts, party=party, issue_date=days_ago(220),
                              due_date=days_ago(overdue), total=Decimal(total), paid=Decimal(paid),
                              status="partially_paid" if paid != "0" else "issued")
    status, body = await get(client, admin, "/reports/receivables", **PERIOD)
    assert status == 200
    assert body == {
        "tenant_id": str(admin.tenant_id),
        "period": PERIOD,
        "total_outstanding": inr("450.51"),
        "aging_buckets": [{"bucket": "0-30", "count": 2, "amount": inr("150.50")},
                          {"bucket": "31-60", "count": 1, "amount": inr("200.00")},
                          {"bucket": "61-90", "count": 1, "amount": inr("80.00")},
                          {"bucket": "90+", "count": 2, "amount": inr("20.01")}],
        "top_debtors": [{"name": "Meera", "amount": inr("200.00")}, {"name": "Asha", "amount": inr("120.00")},
                        {"name": "Omar", "amount": inr("80.00")}, {"name": "Ravi", "amount": inr("50.50")},
                        {"name": "Lena", "amount": inr("0.01")}],
        "top_creditors": [],
    }


async def test_receivables_select_only_open_invoices_of_the_period_and_currency(client, admin, db):
    accounts = await finance.chart(db, admin.tenant_id)
    issue = dt.date(2026, 3, 10)

    async def add(party, **kw):
        values = {"issue_date": issue, "due_date": days_ago(5), "total": Decimal("10.00"), **kw}
        await finance.invoice(db, admin.tenant_id, accounts, party=party, **values)

    await add("kept", status="issued")
    await add("kept too", status="partially_paid", paid=Decimal("4.00"))
    for status in ("draft", "paid", "void"):
        await add(status, status=status)
    await add("fully paid but issued", paid=Decimal("10.00"))
    await add("overpaid", paid=Decimal("12.00"))
    await add("dollars", currency="USD")
    await add("before", issue_date=dt.date(2026, 3, 9))
    await add("after", issue_date=dt.date(2026, 3, 21))
    await add("last day", issue_date=dt.date(2026, 3, 20))
    status, body = await get(client, admin, "/reports/receivables", **{"from": "2026-03-10", "to": "2026-03-20"})
    assert status == 200
    assert [d["name"] for d in body["top_debtors"]] == ["kept", "last day", "kept too"]
    assert body["total_outstanding"] == inr("26.00")
    status, body = await get(client, admin, "/reports/receivables", currency="USD",
                             **{"from": "2026-03-10", "to": "2026-03-10"})
    assert body["total_outstanding"] == {"amount": "10.00", "currency": "USD"}
    assert body["aging_buckets"][0] == {"bucket": "0-30", "count": 1,
                                        "amount": {"amount": "10.00", "currency": "USD"}}
    assert body["top_debtors"] == [{"name": "dollars", "amount": {"amount": "10.00", "currency": "USD"}}]


async def test_top_parties_keep_five_with_ties_by_name(client, admin, db):
    accounts = await finance.chart(db, admin.tenant_id)
    for party, total in [("b", "5.00"), ("a", "5.00"), ("Z", "5.00"), ("c", "7.00"), ("d", "1.00"), ("e", "5.00"),
                         ("f", "0.50")]:
        await finance.bill(db, admin.tenant_id, accounts, party=party, issue_date=dt.date(2026, 1, 1),
                           due_date=days_ago(0), total=Decimal(total))
    status, body = await get(client, admin, "/reports/payables", **PERIOD)
    assert status == 200
    # amount descending, then name ascending in byte order (upper case before lower case)
    assert [(p["name"], p["amount"]["amount"]) for p in body["top_creditors"]] == [
        ("c", "7.00"), ("Z", "5.00"), ("a", "5.00"), ("b", "5.00"), ("e", "5.00")]
    assert body["top_debtors"] == []
    assert body["aging_buckets"][0] == {"bucket": "0-30", "count": 7, "amount": inr("28.50")}


async def test_payables_select_received_and_scheduled_bills(client, admin, db):
    accounts = await finance.chart(db, admin.tenant_id)
    for status in ("draft", "received", "scheduled", "paid", "void"):
        await finance.bill(db, admin.tenant_id, accounts, party=status, status=status, issue_date=dt.date(2026, 2, 1),
                           due_date=days_ago(70), total=Decimal("30.00"))
    status, body = await get(client, admin, "/reports/payables", **PERIOD)
    assert status == 200
    assert [p["name"] for p in body["top_creditors"]] == ["received", "scheduled"]
    assert body["aging_buckets"][2] == {"bucket": "61-90", "count": 2, "amount": inr("60.00")}
    assert body["total_outstanding"] == inr("60.00")
    # invoices are not payables, bills are not receivables
    status, body = await get(client, admin, "/reports/receivables", **PERIOD)
    assert body["total_outstanding"] == inr("0.00") and body["top_debtors"] == []


@pytest.mark.parametrize("path", ["/reports/receivables", "/reports/payables"])
async def test_an_empty_tenant_gets_four_empty_buckets(client, admin, path):
    status, body = await get(client, admin, path, **PERIOD)
    assert status == 200
    assert body == {"tenant_id": str(admin.tenant_id), "period": PERIOD, "total_outstanding": inr("0.00"),
                    "aging_buckets": EMPTY_BUCKETS, "top_debtors": [], "top_creditors": []}


async def test_the_report_currency_defaults_to_the_tenants_default_currency(client, admin, db):
    await db.execute("UPDATE tenant_settings SET default_currency = 'AED' WHERE tenant_id = $1", admin.tenant_id)
    accounts = await finance.chart(db, admin.tenant_id)
    await finance.invoice(db, admin.tenant_id, accounts, party="Dubai", issue_date=dt.date(2026, 1, 1),
                          due_date=days_ago(3), total=Decimal("9.99"), currency="AED")
    await finance.invoice(db, admin.tenant_id, accounts, party="Delhi", issue_date=dt.date(2026, 1, 1),
                          due_date=days_ago(3), total=Decimal("5.00"), currency="INR")
    status, body = await get(client, admin, "/reports/receivables", **PERIOD)
    assert body["total_outstanding"] == {"amount": "9.99", "currency": "AED"}
    assert body["top_debtors"] == [{"name": "Dubai", "amount": {"amount": "9.99", "currency": "AED"}}]
    await db.execute("DELETE FROM tenant_settings WHERE tenant_id = $1", admin.tenant_id)
    status, body = await get(client, admin, "/reports/receivables", **PERIOD)  # no row: the INR default
    assert body["top_debtors"] == [{"name": "Delhi", "amount": inr("5.00")}]


async def test_another_tenants_documents_never_appear(client, admin, make_user, db):
    other = await make_user("agency_admin")
    other_accounts = await finance.chart(db, other.tenant_id)
    await finance.invoice(db, other.tenant_id, other_accounts, party="Theirs", issue_date=dt.date(2026, 1, 1),
                          due_date=days_ago(40), total=Decimal("77.00"))
    await finance.bill(db, other.tenant_id, other_accounts, party="Theirs", issue_date=dt.date(2026, 1, 1),
                       due_date=days_ago(40), total=Decimal("66.00"))
    for path in ("/reports/receivables", "/reports/payables"):
        status, body = await get(client, admin, path, **PERIOD)
        assert (status, body["aging_buckets"], body["top_debtors"], body["top_creditors"]) == (
            200, EMPTY_BUCKETS, [], [])
    status, body = await get(client, admin, "/reports/trial-balance", include_zero=1)
    assert body["accounts"] == [] and body["in_balance"] is True
    status, body = await get(client, other, "/reports/trial-balance")
    assert body["total_debit"] == "143.00" and len(body["accounts"]) == 4


async def test_trial_balance_sums_lines_up_to_the_end_of_as_of(client, admin, db):
    accounts = await finance.chart(db, admin.tenant_id)
    day = dt.datetime(2026, 5, 31, tzinfo=dt.timezone.utc)
    last_moment = day + dt.timedelta(hours=23, minutes=59, seconds=59, microseconds=999_999)
    await finance.post(db, admin.tenant_id, accounts["1200"], accounts["4000"], Decimal("100.00"), posted_at=day)
    await finance.post(db, admin.tenant_id, accounts["1000"], accounts["1200"], Decimal("40.25"),
                       posted_at=last_moment)
    await finance.post(db, admin.tenant_id, accounts["5000"], accounts["2100"], Decimal("60.00"),
                       posted_at=last_moment + dt.timedelta(microseconds=1))
    status, body = await get(client, admin, "/reports/trial-balance", as_of="2026-05-31")
    assert status == 200
    assert body == {
        "tenant_id": str(admin.tenant_id), "as_of": "2026-05-31",
        "accounts": [
            {"code": "1000", "name": "Cash", "type": "asset", "debit": "40.25", "credit": "0.00",
             "balance": "40.25", "currency": "INR"},
            {"code": "1200", "name": "Accounts Receivable", "type": "asset", "debit": "100.00", "credit": "40.25",
             "balance": "59.75", "currency": "INR"},
            {"code": "4000", "name": "Travel Sales", "type": "revenue", "debit": "0.00", "credit": "100.00",
             "balance": "-100.00", "currency": "INR"}],
        "total_debit": "140.25", "total_credit": "140.25", "in_balance": True}
    status, body = await get(client, admin, "/reports/trial-balance", as_of="2026-05-30", include_zero="1")
    assert [(a["code"], a["debit"], a["credit"], a["currency"]) for a in body["accounts"]] == [
        ("1000", "0.00", "0.00", "INR"), ("1200", "0.00", "0.00", "INR"), ("2100", "0.00", "0.00", "INR"),
        ("4000", "0.00", "0.00", "INR"), ("5000", "0.00", "0.00", "INR")]
    assert (body["total_debit"], body["total_credit"], body["in_balance"]) == ("0.00", "0.00", True)
    status, body = await get(client, admin, "/reports/trial-balance")  # default: today, all lines
    assert body["as_of"] == today().isoformat() or body["as_of"] == (today() + dt.timedelta(days=1)).isoformat()
    assert [a["code"] for a in body["accounts"]] == ["1000", "1200", "2100", "4000", "5000"]
    assert (body["total_debit"], body["in_balance"]) == ("200.25", True)


async def test_trial_balance_currency_is_mixed_or_the_default(client, admin, db):
    await db.execute("UPDATE tenant_settings SET default_currency = 'USD' WHERE tenant_id = $1", admin.tenant_id)
    accounts = await finance.chart(db, admin.tenant_id)
    await db.execute("INSERT INTO ledger_accounts (id, tenant_id, code, name, type, is_active) "
                     "VALUES (gen_random_uuid(), $1, '10', 'Petty cash', 'asset', false)", admin.tenant_id)
    await finance.post(db, admin.tenant_id, accounts["1200"], accounts["4000"], Decimal("10.00"), currency="INR")
    await finance.post(db, admin.tenant_id, accounts["1200"], accounts["4000"], Decimal("1.00"), currency="AED")
    await finance.post(db, admin.tenant_id, accounts["5000"], accounts["2100"], Decimal("3.00"), currency="INR")
    status, body = await get(client, admin, "/reports/trial-balance", include_zero=1, as_of="2026-12-31")
    assert [(a["code"], a["currency"], a["balance"]) for a in body["accounts"]] == [
        ("10", "USD", "0.00"), ("1000", "USD", "0.00"), ("1200", "MIXED", "11.00"), ("2100", "INR", "-3.00"),
        ("4000", "MIXED", "-11.00"), ("5000", "INR", "3.00")]
    assert (body["total_debit"], body["total_credit"], body["in_balance"]) == ("14.00", "14.00", True)


async def test_trial_balance_reports_an_unbalanced_ledger(client, admin, db):
    accounts = await finance.chart(db, admin.tenant_id)
    await finance.post(db, admin.tenant_id, accounts["1200"], accounts["4000"], Decimal("10.00"))
    # a ledger the database check never saw (as if loaded before migration 0006): the report must say so
    async with db.transaction():
        await db.execute("ALTER TABLE journal_entries DISABLE TRIGGER journal_entries_entry_check")
        await db.execute(
            "INSERT INTO journal_entries (entry_id, line_no, tenant_id, account_id, debit, currency, posted_at) "
            "VALUES (gen_random_uuid(), 1, $1, $2, 5, 'INR', '2026-01-01')", admin.tenant_id, accounts["5000"])
        await db.execute("ALTER TABLE journal_entries ENABLE TRIGGER journal_entries_entry_check")
    status, body = await get(client, admin, "/reports/trial-balance")
    assert (body["total_debit"], body["total_credit"], body["in_balance"]) == ("15.00", "10.00", False)


@pytest.mark.parametrize("path,params", [
    ("/reports/receivables", PERIOD), ("/reports/payables", PERIOD), ("/reports/trial-balance", {})])
async def test_every_role_and_a_reports_key_may_read_other_keys_may_not(client, admin, make_user, make_api_key,
                                                                         path, params):
    for role in ROLES:
        user = admin if role == "agency_admin" else await make_user(role, tenant_id=admin.tenant_id)
        assert (await client.get(path, params=params, headers=user.headers)).status == 200, role
    viewer_key = await make_api_key(await make_user("viewer", tenant_id=admin.tenant_id), ["reports:read"])
    assert (await client.get(path, params=params, headers=viewer_key.headers)).status == 200
    other_key = await make_api_key(admin, ["enquiries:read", "audit:read"])
    response = await client.get(path, params=params, headers=other_key.headers)
    assert (response.status, await response.json()) == (403, {"detail": "insufficient_scope"})
    response = await client.get(path, params=params)
    assert (response.status, await response.json()) == (401, {"detail": "unauthorized"})


@pytest.mark.parametrize("path", ["/reports/receivables", "/reports/payables"])
async def test_from_after_to_is_invalid_period(client, admin, path):
    status, body = await get(client, admin, path, **{"from": "2026-03-02", "to": "2026-03-01"})
    assert (status, body) == (422, {"detail": "invalid_period"})
    status, body = await get(client, admin, path, **{"from": "2026-03-01", "to": "2026-03-01"})
    assert status == 200 and body["period"] == {"from": "2026-03-01", "to": "2026-03-01"}


@pytest.mark.parametrize("path", ["/reports/receivables", "/reports/payables"])
@pytest.mark.parametrize("params,loc,kind", [
    ({"to": "2026-01-01"}, "from", "missing"),
    ({"from": "2026-01-01"}, "to", "missing"),
    ({"from": "2026-02-30", "to": "2026-03-01"}, "from", "date_from_datetime_parsing"),
    ({"from": "2026-01-01", "to": "yesterday"}, "to", "date_from_datetime_parsing"),
    ({"from": "0000-01-01", "to": "2026-01-01"}, "from", "date_from_datetime_parsing"),
    ({"from": "2026-01-01", "to": "2026-01-02", "currency": "inr"}, "currency", "string_pattern_mismatch"),
    ({"from": "2026-01-01", "to": "2026-01-02", "currency": "EURO"}, "currency", "string_pattern_mismatch"),
    ({"from": "2026-01-01", "to": "2026-01-02", "currency": ""}, "currency", "string_pattern_mismatch"),
])
async def test_bad_aging_parameters_are_422_list_shape(client, admin, path, params, loc, kind):
    status, body = await get(client, admin, path, **params)
    assert status == 422
    assert [(item["loc"], item["type"]) for item in body["detail"]] == [(["query", loc], kind)]


async def test_an_unknown_currency_is_an_empty_report(client, admin, db):
    accounts = await finance.chart(db, admin.tenant_id)
    await finance.invoice(db, admin.tenant_id, accounts, party="x", issue_date=dt.date(2026, 1, 1),
                          due_date=days_ago(1), total=Decimal("1.00"))
    status, body = await get(client, admin, "/reports/receivables", currency="XYZ", **PERIOD)
    assert status == 200
    assert body["total_outstanding"] == {"amount": "0.00", "currency": "XYZ"} and body["top_debtors"] == []


@pytest.mark.parametrize("params,loc", [
    ({"include_zero": "2"}, "include_zero"), ({"include_zero": "-1"}, "include_zero"),
    ({"include_zero": "true"}, "include_zero"), ({"include_zero": "1.0"}, "include_zero"),
    ({"include_zero": ""}, "include_zero"), ({"as_of": "2026-13-01"}, "as_of"), ({"as_of": "today"}, "as_of"),
    ({"as_of": "2026-02-29"}, "as_of"),
])
async def test_bad_trial_balance_parameters_are_422_list_shape(client, admin, params, loc):
    status, body = await get(client, admin, "/reports/trial-balance", **params)
    assert status == 422
    assert [item["loc"] for item in body["detail"]] == [["query", loc]]


@pytest.mark.parametrize("as_of", ["0001-01-01", "9999-12-31"])
async def test_extreme_as_of_dates_answer(client, admin, db, as_of):
    accounts = await finance.chart(db, admin.tenant_id)
    await finance.post(db, admin.tenant_id, accounts["1200"], accounts["4000"], Decimal("10.00"))
    status, body = await get(client, admin, "/reports/trial-balance", as_of=as_of)
    assert status == 200 and body["as_of"] == as_of
    assert body["total_debit"] == ("0.00" if as_of.startswith("0001") else "10.00")


async def test_extreme_periods_answer(client, admin):
    status, body = await get(client, admin, "/reports/receivables", **{"from": "0001-01-01", "to": "9999-12-31"})
    assert status == 200 and body["aging_buckets"] == EMPTY_BUCKETS
