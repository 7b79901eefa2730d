"""The database itself keeps the ledger honest (migration 0006): posted lines cannot change, and an entry that
is unbalanced or mixes tenants, currencies, posting times or another tenant's accounts cannot commit. Each
violation is tried with direct SQL, as a buggy caller or a manual session would."""

import datetime as dt
from decimal import Decimal

import asyncpg
import pytest

from tests import finance
from voyagent.ids import new_id

INSERT = ("INSERT INTO journal_entries (entry_id, line_no, tenant_id, account_id, debit, credit, currency, posted_at, "
          "source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'test')")
AT = dt.datetime(2026, 2, 1, 9, 30, tzinfo=dt.timezone.utc)


def line(entry_id, line_no, tenant_id, account_id, debit="0", credit="0", currency="INR", posted_at=AT):
    return (entry_id, line_no, tenant_id, account_id, Decimal(debit), Decimal(credit), currency, posted_at)


@pytest.fixture
async def ledger(db):
    tenant_id = await finance.new_tenant(db)
    return tenant_id, await finance.chart(db, tenant_id)


async def lines_of(db, entry_id):
    return await db.fetchval("SELECT count(*) FROM journal_entries WHERE entry_id = $1", entry_id)


async def refused_at_commit(db, rows, constraint):
    """Insert the rows in one transaction; the commit must fail naming ``constraint`` and leave nothing."""
    with pytest.raises(asyncpg.CheckViolationError) as raised:
        async with db.transaction():
            await db.executemany(INSERT, rows)
    assert raised.value.constraint_name == constraint
    assert await lines_of(db, rows[0][0]) == 0


async def test_a_balanced_entry_commits_even_when_its_lines_come_in_separate_statements(db, ledger):
    tenant_id, accounts = ledger
    entry_id = new_id()
    async with db.transaction():
        await db.execute(INSERT, *line(entry_id, 1, tenant_id, accounts["1200"], debit="100.00"))
        # unbalanced in between: the check waits for the commit
        await db.execute(INSERT, *line(entry_id, 2, tenant_id, accounts["4000"], credit="60.00"))
        await db.execute(INSERT, *line(entry_id, 3, tenant_id, accounts["2100"], credit="40.00"))
    assert await lines_of(db, entry_id) == 3


async def test_an_unbalanced_entry_cannot_commit(db, ledger):
    tenant_id, accounts = ledger
    entry_id = new_id()
    await refused_at_commit(db, [line(entry_id, 1, tenant_id, accounts["1200"], debit="100.00"),
                                 line(entry_id, 2, tenant_id, accounts["4000"], credit="99.99")],
                            "journal_entries_balanced")


async def test_a_single_line_cannot_commit(db, ledger):
    tenant_id, accounts = ledger
    await refused_at_commit(db, [line(new_id(), 1, tenant_id, accounts["1200"], debit="1.00")],
                            "journal_entries_balanced")


async def test_an_entry_cannot_mix_currencies(db, ledger):
    tenant_id, accounts = ledger
    entry_id = new_id()
    await refused_at_commit(db, [line(entry_id, 1, tenant_id, accounts["1200"], debit="5.00", currency="INR"),
                                 line(entry_id, 2, tenant_id, accounts["4000"], credit="5.00", currency="USD")],
                            "journal_entries_one_currency")


async def test_an_entry_cannot_mix_tenants(db, ledger):
    tenant_id, accounts = ledger
    other_id = await finance.new_tenant(db)
    other_accounts = await finance.chart(db, other_id)
    entry_id = new_id()
    await refused_at_commit(db, [line(entry_id, 1, tenant_id, accounts["1200"], debit="5.00"),
                                 line(entry_id, 2, other_id, other_accounts["4000"], credit="5.00")],
                            "journal_entries_one_tenant")


async def test_an_entry_cannot_post_to_another_tenants_account(db, ledger):
    tenant_id, accounts = ledger
    other_accounts = await finance.chart(db, await finance.new_tenant(db))
    entry_id = new_id()
    await refused_at_commit(db, [line(entry_id, 1, tenant_id, accounts["1200"], debit="5.00"),
                                 line(entry_id, 2, tenant_id, other_accounts["4000"], credit="5.00")],
                            "journal_entries_own_accounts")


async def test_an_entry_cannot_span_two_posting_times(db, ledger):
    # a trial balance cut between its lines would otherwise be out of balance
    tenant_id, accounts = ledger
    entry_id = new_id()
    await refused_at_commit(db, [line(entry_id, 1, tenant_id, accounts["1200"], debit="5.00"),
                                 line(entry_id, 2, tenant_id, accounts["4000"], credit="5.00",
                                      posted_at=AT + dt.timedelta(days=1))],
                            "journal_entries_one_posted_at")


async def test_a_line_added_later_to_a_committed_entry_must_keep_it_balanced(db, ledger):
    tenant_id, accounts = ledger
    entry_id = await finance.post(db, tenant_id, accounts["1200"], accounts["4000"], Decimal("10.00"))
    with pytest.raises(asyncpg.CheckViolationError) as raised:
        await db.execute(INSERT, *line(entry_id, 3, tenant_id, accounts["5000"], debit="1.00",
                                        posted_at=finance.DEFAULT_POSTED_AT))  # autocommit
    assert raised.value.constraint_name == "journal_entries_balanced"
    assert await lines_of(db, entry_id) == 2


@pytest.mark.parametrize("statement", [
    "UPDATE journal_entries SET debit = debit + 1 WHERE entry_id = $1",
    "UPDATE journal_entries SET memo = 'edited' WHERE entry_id = $1",
    "UPDATE journal_entries SET posted_at = posted_at WHERE entry_id = $1 AND line_no = 1",
    "DELETE FROM journal_entries WHERE entry_id = $1",
    "DELETE FROM journal_entries WHERE entry_id = $1 AND line_no = 2",
])
async def test_posted_lines_cannot_be_updated_or_deleted(db, ledger, statement):
    tenant_id, accounts = ledger
    entry_id = await finance.post(db, tenant_id, accounts["1200"], accounts["4000"], Decimal("10.00"), memo="m")
    with pytest.raises(asyncpg.RestrictViolationError) as raised:
        await db.execute(statement, entry_id)
    assert raised.value.constraint_name == "journal_entries_immutable"
    rows = await db.fetch("SELECT line_no, debit, credit, memo, posted_at FROM journal_entries WHERE entry_id = $1 "
                          "ORDER BY line_no", entry_id)
    assert [tuple(r) for r in rows] == [(1, Decimal("10.00"), Decimal("0.00"), "m", finance.DEFAULT_POSTED_AT),
                                        (2, Decimal("0.00"), Decimal("10.00"), "m", finance.DEFAULT_POSTED_AT)]


async def test_lines_cannot_be_truncated(db, ledger):
    tenant_id, accounts = ledger
    await finance.post(db, tenant_id, accounts["1200"], accounts["4000"], Decimal("10.00"))
    with pytest.raises(asyncpg.RestrictViolationError):
        await db.execute("TRUNCATE journal_entries CASCADE")
    assert await db.fetchval("SELECT count(*) FROM journal_entries WHERE tenant_id = $1", tenant_id) == 2


async def test_an_account_cannot_move_to_another_tenant(db, ledger):
    tenant_id, accounts = ledger
    other_id = await finance.new_tenant(db)
    with pytest.raises(asyncpg.RestrictViolationError):
        await db.execute("UPDATE ledger_accounts SET tenant_id = $1 WHERE id = $2", other_id, accounts["1200"])
    await db.execute("UPDATE ledger_accounts SET name = 'Debtors' WHERE id = $1", accounts["1200"])  # allowed
    assert await db.fetchval("SELECT tenant_id FROM ledger_accounts WHERE id = $1", accounts["1200"]) == tenant_id


async def test_deleting_a_tenant_still_removes_its_whole_ledger(db, ledger):
    tenant_id, accounts = ledger
    await finance.post(db, tenant_id, accounts["1200"], accounts["4000"], Decimal("10.00"))
    other_id = await finance.new_tenant(db)
    await finance.post(db, other_id, (await finance.chart(db, other_id))["1200"],
                       (await finance.chart(db, other_id))["4000"], Decimal("3.00"))
    await db.execute("DELETE FROM tenants WHERE id = $1", tenant_id)
    assert await db.fetchval("SELECT count(*) FROM journal_entries WHERE tenant_id = $1", tenant_id) == 0
    assert await db.fetchval("SELECT count(*) FROM ledger_accounts WHERE tenant_id = $1", tenant_id) == 0
    assert await db.fetchval("SELECT count(*) FROM journal_entries WHERE tenant_id = $1", other_id) == 2


async def test_the_application_cannot_skip_the_check_by_deferring_nothing(db, ledger):
    # SET CONSTRAINTS ALL IMMEDIATE only moves the check earlier: the bad statement fails at once
    tenant_id, accounts = ledger
    entry_id = new_id()
    with pytest.raises(asyncpg.CheckViolationError):
        async with db.transaction():
            await db.execute("SET CONSTRAINTS ALL IMMEDIATE")
            await db.execute(INSERT, *line(entry_id, 1, tenant_id, accounts["1200"], debit="1.00"))
    assert await lines_of(db, entry_id) == 0
