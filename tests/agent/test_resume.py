"""The resume step (chat-and-agent.md §6.5) and the executions it runs: bookings with their bill, invoices, the
ledger, audit rows, ``consumed_at`` exactly once, re-checks, expiry, and document numbering under concurrency."""

import asyncio
import dataclasses
import datetime as dt
import json
import uuid
from decimal import Decimal

import asyncpg

from tests.agent.harness import kinds
from tests.agent.test_gateway_write_tools import DEL_DXB, FLIGHT, HOTEL, audit_rows, planned, wire
from tests.conftest import wait_until
from voyagent.agent.interface import ResumedApproval
from voyagent.agent.resume import resume
from voyagent.agent.sandbox import SandboxSupplier
from voyagent.services.itinerary_items import booking_reference
from voyagent.services import approvals


async def request(harness, user, session_id, tool, tool_input, *, turn_id=None):
    outcome = await harness.gateway(user, session_id, turn_id).invoke(tool, tool_input)
    assert outcome.kind == "approval_needed", outcome
    harness.take()
    return outcome.approval_id


async def decide(harness, user, approval_id, granted=True):
    async with harness.services.database.transaction() as conn:
        result = await approvals.decide(conn, harness.services.sql, tenant_id=user.tenant_id, approval_id=approval_id,
                                        granted=granted, reason=None, resolver_id=user.id, resolver_role=user.role,
                                        now=harness.clock())
    assert result.outcome == "decided"
    return result.row


async def approved(harness, user, session_id, tool, tool_input):
    """Request and grant one call; its approval row."""
    return await decide(harness, user, await request(harness, user, session_id, tool, tool_input))


async def run_resume(harness, user, session_id):
    resumed = await resume(harness.gateway(user, session_id))
    return resumed, harness.take()


async def approval(harness, approval_id):
    return await harness.db.fetchrow("SELECT status::text, consumed_at FROM pending_approvals WHERE id = $1",
                                     approval_id)


async def ledger_lines(harness, tenant_id):
    return await harness.db.fetch(
        "SELECT j.entry_id, j.line_no, a.code, j.debit, j.credit, j.currency, j.memo, j.source, j.posted_at "
        "FROM journal_entries AS j JOIN ledger_accounts AS a ON a.id = j.account_id WHERE j.tenant_id = $1 "
        "ORDER BY j.posted_at, j.entry_id, j.line_no", tenant_id)


async def test_a_granted_booking_runs_once_with_its_bill_ledger_entry_and_audit_row(harness, make_user):
    user = await make_user("ticketing_lead")
    session_id = await planned(harness, user, FLIGHT)
    row = await approved(harness, user, session_id, "book_offer", {"offer_id": FLIGHT})
    resumed, events = await run_resume(harness, user, session_id)

    assert kinds(events) == ["approval_granted", "tool_result", "text_delta"]
    granted, result, text = events
    assert (granted["approval_id"], granted["tool_name"], granted["tool_call_id"]) == (row.id, "book_offer",
                                                                                       row.tool_call_id)
    assert (result["tool_name"], result["tool_call_id"]) == ("book_offer", row.tool_call_id)
    assert text["text"] and "BILL-" in text["text"]
    output = wire(result["tool_output"])
    reference = booking_reference(user.tenant_id, session_id, FLIGHT)
    t8 = user.tenant_id.hex[:8].upper()
    assert output["ok"] is True and list(output) == ["ok", "item", "bill"]
    assert (output["item"]["status"], output["item"]["reference"]) == ("booked", reference)
    bill = output["bill"]
    today = harness.clock.now.date()
    assert list(bill) == ["bill_id", "number", "party_name", "amount", "issue_date", "due_date", "status"]
    assert (bill["number"], bill["party_name"], bill["amount"], bill["status"]) == (
        f"BILL-{t8}-0001", "IndiGo", {"amount": "54208.00", "currency": "INR"}, "received")
    assert (bill["issue_date"], bill["due_date"]) == (today.isoformat(), (today + dt.timedelta(days=30)).isoformat())
    assert resumed == [ResumedApproval(row.id, "book_offer", row.tool_call_id, "granted", result["tool_output"])]

    stored = await harness.db.fetchrow("SELECT * FROM bills WHERE id = $1", uuid.UUID(bill["bill_id"]))
    assert (stored["vendor_reference"], stored["party_reference"], stored["currency"], stored["amount_paid"],
            stored["total_amount"], stored["status"]) == (reference, str(session_id), "INR", 0, Decimal("54208.00"),
                                                          "received")
    item = await harness.db.fetchrow("SELECT status::text, reference, bill_id FROM itinerary_items "
                                     "WHERE session_id = $1 AND offer_id = $2", session_id, FLIGHT)
    assert (item["status"], item["reference"], item["bill_id"]) == ("booked", reference, stored["id"])
    lines = await ledger_lines(harness, user.tenant_id)
    assert [(line["line_no"], line["code"], line["debit"], line["credit"]) for line in lines] == [
        (1, "5000", Decimal("54208.00"), Decimal("0.00")), (2, "2100", Decimal("0.00"), Decimal("54208.00"))]
    assert {(line["source"], line["memo"], line["currency"], line["posted_at"]) for line in lines} == {
        (f"book_offer:{row.id}", bill["number"], "INR", harness.clock.now)}
    chart = await harness.db.fetch("SELECT code, name, type::text FROM ledger_accounts WHERE tenant_id = $1 "
                                   "ORDER BY code", user.tenant_id)
    assert [tuple(r) for r in chart] == [("1200", "Accounts Receivable", "asset"),
                                         ("2100", "Accounts Payable", "liability"), ("4000", "Travel Sales", "revenue"),
                                         ("5000", "Cost of Travel Sales", "expense")]

    [audit] = await audit_rows(harness, user.tenant_id, "book_offer")
    assert (audit["status"], audit["driver"], audit["approval_required"], audit["actor_kind"]) == (
        "succeeded", "sandbox", True, "agent")
    assert (audit["approved_by"], audit["approved_at"]) == (user.id, row.resolved_at)
    assert audit["entity_refs"] == {"session_id": str(session_id), "approval_id": row.id,
                                    "bill_id": bill["bill_id"]}
    assert audit["inputs"] == {"offer_id": FLIGHT} and audit["outputs"] == output and audit["error"] is None
    assert (await approval(harness, row.id))["consumed_at"] == harness.clock.now
    assert ("book_offer", "success") in harness.counted

    again, events = await run_resume(harness, user, session_id)  # acted on exactly once
    assert again == [] and events == []
    assert len(await ledger_lines(harness, user.tenant_id)) == 2
    assert await harness.db.fetchval("SELECT count(*) FROM bills WHERE tenant_id = $1", user.tenant_id) == 1


async def test_the_reference_of_the_contract_example_and_its_summary(harness, make_user):
    tenant_id = uuid.UUID("0190a1b2-0000-7000-8000-000000000001")
    session_id = uuid.UUID("0190a1b2-0000-7000-8000-000000000002")
    await harness.db.execute("INSERT INTO tenants (id, display_name) VALUES ($1, 'Example')", tenant_id)
    await harness.db.execute("INSERT INTO tenant_settings (tenant_id) VALUES ($1)", tenant_id)
    user = await make_user("agency_admin", tenant_id)
    await harness.db.execute("INSERT INTO sessions (id, tenant_id, actor_id) VALUES ($1, $2, $3)", session_id,
                             tenant_id, user.id)
    gateway = harness.gateway(user, session_id)
    flight = wire((await gateway.invoke("search_flights", DEL_DXB)).output)["offers"][0]
    snapshot = {**flight, "offer_id": "FLT-ABCDEF12"}
    await harness.db.execute(
        "INSERT INTO itinerary_items (id, tenant_id, session_id, kind, offer_id, status, data, price_amount, "
        "price_currency) VALUES ($1, $2, $3, 'flight', 'FLT-ABCDEF12', 'planned', $4, 54208.00, 'INR')",
        uuid.uuid4(), tenant_id, session_id, json.dumps(snapshot))
    outcome = await gateway.invoke("book_offer", {"offer_id": "FLT-ABCDEF12"})
    assert outcome.output["approval_summary"] == (
        "Book flight 6E893 DEL-DXB on 2026-07-01 (FLT-ABCDEF12) for INR 54,208.00. Not reversible.")
    harness.take()
    await decide(harness, user, outcome.approval_id)
    _, events = await run_resume(harness, user, session_id)
    output = wire(events[1]["tool_output"])
    assert output["item"]["reference"] == "IMJBYR" and output["bill"]["number"] == "BILL-0190A1B2-0001"
    assert await harness.db.fetchval("SELECT vendor_reference FROM bills WHERE tenant_id = $1", tenant_id) == "IMJBYR"


async def test_hold_then_book_keeps_the_reference(harness, make_user):
    user = await make_user("agency_admin")
    session_id = await planned(harness, user, HOTEL)
    await approved(harness, user, session_id, "hold_offer", {"offer_id": HOTEL})
    _, events = await run_resume(harness, user, session_id)
    held = wire(events[1]["tool_output"])
    reference = booking_reference(user.tenant_id, session_id, HOTEL)
    assert list(held) == ["ok", "item"] and (held["item"]["status"], held["item"]["reference"]) == ("held", reference)
    [audit] = await audit_rows(harness, user.tenant_id, "hold_offer")
    assert audit["status"] == "succeeded" and audit["driver"] == "sandbox" and "bill_id" not in audit["entity_refs"]
    assert await ledger_lines(harness, user.tenant_id) == []  # a hold posts nothing

    await approved(harness, user, session_id, "book_offer", {"offer_id": HOTEL})
    _, events = await run_resume(harness, user, session_id)
    booked = wire(events[1]["tool_output"])
    assert (booked["item"]["status"], booked["item"]["reference"]) == ("booked", reference)
    assert booked["bill"]["party_name"] == "Royal Dubai Inn" and booked["bill"]["amount"]["amount"] == "55812.00"
    report = wire((await harness.gateway(user, session_id).invoke("get_itinerary", {})).output)
    assert report["hotels"][0]["confirmation"] == reference and report["hotels"][0]["status"] == "booked"


async def test_a_rejected_decision_is_reported_once_and_changes_nothing(harness, make_user):
    user = await make_user("agency_admin")
    session_id = await planned(harness, user, FLIGHT)
    row = await decide(harness, user, await request(harness, user, session_id, "book_offer", {"offer_id": FLIGHT}),
                       granted=False)
    resumed, events = await run_resume(harness, user, session_id)
    assert kinds(events) == ["approval_denied", "text_delta"]
    assert (events[0]["approval_id"], events[0]["tool_name"], events[0]["tool_call_id"], events[0]["error_message"]) == (
        row.id, "book_offer", row.tool_call_id, None)
    assert events[1]["text"]
    assert resumed == [ResumedApproval(row.id, "book_offer", row.tool_call_id, "rejected", None)]
    [audit] = await audit_rows(harness, user.tenant_id, "book_offer")
    assert (audit["status"], audit["error"], audit["approval_required"], audit["driver"]) == (
        "rejected", None, True, "sandbox")
    assert audit["entity_refs"] == {"session_id": str(session_id), "approval_id": row.id}
    assert audit["inputs"] == {"offer_id": FLIGHT}
    assert (await approval(harness, row.id))["consumed_at"] is not None
    assert await harness.db.fetchval("SELECT status::text FROM itinerary_items WHERE session_id = $1",
                                     session_id) == "planned"
    assert await run_resume(harness, user, session_id) == ([], [])


async def test_an_expired_approval_is_swept_and_reported_as_expired(harness, make_user):
    user = await make_user("agency_admin")
    session_id = await planned(harness, user, FLIGHT)
    pending = await request(harness, user, session_id, "hold_offer", {"offer_id": FLIGHT})
    resumed, events = await run_resume(harness, user, session_id)  # still pending: left alone
    assert resumed == [] and events == [] and (await approval(harness, pending))["status"] == "pending"
    harness.clock.advance(900)  # expires_at ≤ now
    resumed, events = await run_resume(harness, user, session_id)
    assert kinds(events) == ["approval_denied", "text_delta"] and events[0]["error_message"] == "approval_expired"
    assert resumed[0].status == "expired" and resumed[0].output is None
    stored = await approval(harness, pending)
    assert stored["status"] == "expired" and stored["consumed_at"] == harness.clock.now
    [audit] = await audit_rows(harness, user.tenant_id, "hold_offer")
    assert (audit["status"], audit["error"]) == ("cancelled", "approval_expired")
    assert await run_resume(harness, user, session_id) == ([], [])


async def test_a_failed_recheck_at_execution_is_a_failed_audit_row(harness, make_user):
    user = await make_user("agency_admin")
    session_id = await planned(harness, user, FLIGHT)
    first = await approved(harness, user, session_id, "hold_offer", {"offer_id": FLIGHT})
    harness.clock.advance(1)
    second = await approved(harness, user, session_id, "hold_offer", {"offer_id": FLIGHT})
    resumed, events = await run_resume(harness, user, session_id)
    assert kinds(events) == ["approval_granted", "tool_result", "text_delta"] * 2
    assert [r.approval_id for r in resumed] == [first.id, second.id]  # by requested_at
    assert events[1]["tool_output"]["ok"] is True
    refused = events[4]["tool_output"]
    assert refused["ok"] is False and refused["error"] == "already_held"
    assert events[4]["tool_call_id"] == second.tool_call_id
    audits = await audit_rows(harness, user.tenant_id, "hold_offer")
    assert [(a["status"], a["error"], a["entity_refs"]["approval_id"]) for a in audits] == [
        ("succeeded", None, first.id), ("failed", "already_held", second.id)]
    assert audits[1]["outputs"] == refused and audits[1]["completed_at"] is not None
    for decided in (first, second):
        assert (await approval(harness, decided.id))["consumed_at"] is not None
    assert ("hold_offer", "error") in harness.counted


async def test_an_invoice_of_booked_items_with_its_ledger_entry(harness, make_user):
    user = await make_user("agency_admin")
    session_id = await planned(harness, user, FLIGHT, HOTEL)
    for offer_id in (FLIGHT, HOTEL):
        await approved(harness, user, session_id, "book_offer", {"offer_id": offer_id})
    await run_resume(harness, user, session_id)
    row = await approved(harness, user, session_id, "issue_invoice",
                         {"customer_name": "Asha Rao", "offer_ids": [HOTEL, FLIGHT, "FLT-00000000"]})
    assert row.summary == "Issue invoice to Asha Rao for INR 110,020.00 covering 2 item(s). Reversible by voiding."
    _, events = await run_resume(harness, user, session_id)
    assert kinds(events) == ["approval_granted", "tool_result", "text_delta"]
    output = wire(events[1]["tool_output"])
    invoice = output["invoice"]
    today = harness.clock.now.date()
    assert list(output) == ["ok", "invoice"] and list(invoice) == [
        "invoice_id", "number", "party_name", "amount", "issue_date", "due_date", "status", "offer_ids"]
    assert (invoice["number"], invoice["party_name"], invoice["amount"], invoice["status"], invoice["offer_ids"]) == (
        f"INV-{user.tenant_id.hex[:8].upper()}-0001", "Asha Rao", {"amount": "110020.00", "currency": "INR"},
        "issued", [FLIGHT, HOTEL])  # creation order
    assert invoice["due_date"] == (today + dt.timedelta(days=14)).isoformat()
    stored = await harness.db.fetchrow("SELECT * FROM invoices WHERE id = $1", uuid.UUID(invoice["invoice_id"]))
    assert (stored["party_reference"], stored["total_amount"], stored["amount_paid"], stored["status"]) == (
        str(session_id), Decimal("110020.00"), 0, "issued")
    linked = await harness.db.fetch("SELECT invoice_id FROM itinerary_items WHERE session_id = $1", session_id)
    assert {r["invoice_id"] for r in linked} == {stored["id"]}
    [audit] = await audit_rows(harness, user.tenant_id, "issue_invoice")
    assert audit["entity_refs"] == {"session_id": str(session_id), "approval_id": row.id,
                                    "invoice_id": invoice["invoice_id"]} and audit["driver"] is None

    # Trial-balance-style check: every entry balances, and so does the tenant's whole ledger.
    lines = await ledger_lines(harness, user.tenant_id)
    entries = {}
    for line in lines:
        entries.setdefault(line["entry_id"], []).append(line)
    assert len(entries) == 3 and all(sum(l["debit"] for l in e) == sum(l["credit"] for l in e)
                                     for e in entries.values())
    balance = {}
    for line in lines:
        balance[line["code"]] = balance.get(line["code"], 0) + line["debit"] - line["credit"]
    assert balance == {"5000": Decimal("110020.00"), "2100": Decimal("-110020.00"), "1200": Decimal("110020.00"),
                       "4000": Decimal("-110020.00")}
    assert sum(balance.values()) == 0
    invoice_lines = [l for l in lines if l["source"] == f"issue_invoice:{row.id}"]
    assert [(l["code"], l["memo"]) for l in invoice_lines] == [("1200", invoice["number"]), ("4000", invoice["number"])]

    # Invoiced items are not invoiced again: a second request is refused before any approval.
    again = await harness.gateway(user, session_id).invoke("issue_invoice", {"customer_name": "Asha Rao",
                                                                             "offer_ids": [FLIGHT]})
    assert again.output["error"] == "nothing_to_invoice"


async def test_an_invoice_granted_twice_runs_once(harness, make_user):
    user = await make_user("agency_admin")
    session_id = await planned(harness, user, FLIGHT)
    await approved(harness, user, session_id, "book_offer", {"offer_id": FLIGHT})
    await run_resume(harness, user, session_id)
    tool_input = {"customer_name": "Asha Rao", "offer_ids": [FLIGHT]}
    await approved(harness, user, session_id, "issue_invoice", tool_input)
    harness.clock.advance(1)
    second = await approved(harness, user, session_id, "issue_invoice", tool_input)
    _, events = await run_resume(harness, user, session_id)
    outputs = [e["tool_output"] for e in events if e["kind"] == "tool_result"]
    assert outputs[0]["ok"] is True and outputs[1]["error"] == "nothing_to_invoice"
    assert await harness.db.fetchval("SELECT count(*) FROM invoices WHERE tenant_id = $1", user.tenant_id) == 1
    assert len(await ledger_lines(harness, user.tenant_id)) == 4  # the booking's entry and one invoice entry
    audits = await audit_rows(harness, user.tenant_id, "issue_invoice")
    assert [a["status"] for a in audits] == ["succeeded", "failed"]
    assert "invoice_id" not in audits[1]["entity_refs"]  # a refused execution names no document
    assert audits[1]["entity_refs"]["approval_id"] == second.id


async def test_numbers_continue_from_the_highest_of_their_shape(harness, make_user):
    user = await make_user("agency_admin")
    t8 = user.tenant_id.hex[:8].upper()
    for number, reference in ((f"BILL-{t8}-0009", "R1"), (f"BILL-{t8}-12a", "R2"), (f"BILL-{t8}-007", "R3"),
                              ("BILL-FFFFFFFF-0500", "R4")):
        await harness.db.execute(
            "INSERT INTO bills (id, tenant_id, number, party_name, vendor_reference, issue_date, due_date, "
            "total_amount, currency, status) VALUES ($1, $2, $3, 'X', $4, current_date, current_date, 1, 'INR', "
            "'received')", uuid.uuid4(), user.tenant_id, number, reference)
    await harness.db.execute(
        "INSERT INTO invoices (id, tenant_id, number, party_name, issue_date, due_date, total_amount, currency, status) "
        "VALUES ($1, $2, $3, 'X', current_date, current_date, 1, 'INR', 'issued')",
        uuid.uuid4(), user.tenant_id, f"INV-{t8}-9999")
    session_id = await planned(harness, user, FLIGHT)
    await approved(harness, user, session_id, "book_offer", {"offer_id": FLIGHT})
    _, events = await run_resume(harness, user, session_id)
    assert events[1]["tool_output"]["bill"]["number"] == f"BILL-{t8}-0010"
    await approved(harness, user, session_id, "issue_invoice", {"customer_name": "A", "offer_ids": [FLIGHT]})
    _, events = await run_resume(harness, user, session_id)
    assert events[1]["tool_output"]["invoice"]["number"] == f"INV-{t8}-10000"


async def test_concurrent_bookings_of_two_sessions_get_distinct_bill_numbers(harness, make_user):
    user = await make_user("agency_admin")
    sessions = [await planned(harness, user, FLIGHT) for _ in range(4)]
    for session_id in sessions:
        await approved(harness, user, session_id, "book_offer", {"offer_id": FLIGHT})
    results = await asyncio.gather(*(resume(harness.gateway(user, session_id)) for session_id in sessions))
    numbers = sorted(r[0].output["bill"]["number"] for r in results)
    t8 = user.tenant_id.hex[:8].upper()
    assert numbers == [f"BILL-{t8}-{n:04d}" for n in range(1, 5)]
    totals = await harness.db.fetchrow("SELECT sum(debit) AS debit, sum(credit) AS credit, count(*) AS lines "
                                       "FROM journal_entries WHERE tenant_id = $1", user.tenant_id)
    assert totals["debit"] == totals["credit"] == Decimal("216832.00") and totals["lines"] == 8
    assert await harness.db.fetchval("SELECT count(*) FROM ledger_accounts WHERE tenant_id = $1", user.tenant_id) == 4


async def test_an_existing_account_is_kept_when_the_chart_is_ensured(harness, make_user):
    user = await make_user("agency_admin")
    await harness.db.execute("INSERT INTO ledger_accounts (id, tenant_id, code, name, type) "
                             "VALUES ($1, $2, '2100', 'Suppliers', 'liability')", uuid.uuid4(), user.tenant_id)
    session_id = await planned(harness, user, FLIGHT)
    await approved(harness, user, session_id, "book_offer", {"offer_id": FLIGHT})
    await run_resume(harness, user, session_id)
    names = await harness.db.fetch("SELECT code, name FROM ledger_accounts WHERE tenant_id = $1 ORDER BY code",
                                   user.tenant_id)
    assert [tuple(r) for r in names] == [("1200", "Accounts Receivable"), ("2100", "Suppliers"),
                                         ("4000", "Travel Sales"), ("5000", "Cost of Travel Sales")]


async def test_a_number_taken_by_a_concurrent_transaction_is_counted_again(harness, make_user, database):
    user = await make_user("agency_admin")
    t8 = user.tenant_id.hex[:8].upper()
    session_id = await planned(harness, user, FLIGHT)
    await approved(harness, user, session_id, "book_offer", {"offer_id": FLIGHT})
    rival = await asyncpg.connect(database.dsn)
    try:
        transaction = rival.transaction()
        await transaction.start()
        await rival.execute(
            "INSERT INTO bills (id, tenant_id, number, party_name, vendor_reference, issue_date, due_date, "
            "total_amount, currency, status) VALUES ($1, $2, $3, 'Rival', 'RIVAL', current_date, current_date, 1, "
            "'INR', 'received')", uuid.uuid4(), user.tenant_id, f"BILL-{t8}-0001")
        running = asyncio.create_task(resume(harness.gateway(user, session_id)))

        async def waits_on_the_rival():
            return await harness.db.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO bills%'")

        await wait_until(waits_on_the_rival, what="the booking's insert waits for the rival's number")
        await transaction.commit()
        [outcome] = await running
    finally:
        await rival.close()
    assert outcome.output["bill"]["number"] == f"BILL-{t8}-0002"


async def test_searches_holds_and_bookings_wait_for_the_supplier_after_their_first_event(harness, make_user):
    waits = []

    async def sleep(seconds):
        waits.append((seconds, [e["kind"] for e in harness.events]))

    harness.services = dataclasses.replace(harness.services, supplier=SandboxSupplier(250, sleep=sleep))
    user = await make_user("agency_admin")
    session_id = await harness.new_session(user)
    await harness.gateway(user, session_id).invoke("search_flights", DEL_DXB)
    assert waits == [(0.25, ["tool_use"])]  # the tool_use is out before the supplier's latency
    await harness.gateway(user, session_id).invoke("add_to_itinerary", {"offer_id": FLIGHT})
    harness.take()
    waits.clear()
    await approved(harness, user, session_id, "hold_offer", {"offer_id": FLIGHT})
    assert waits == []  # requesting the approval does not call the supplier
    await run_resume(harness, user, session_id)
    assert waits == [(0.25, ["approval_granted"])]
