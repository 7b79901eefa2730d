"""The export's CSV records as PostgreSQL writes them (sql/lists/audit_export.sql) against the contract's rules read
in Python, byte for byte on awkward values; and the export statement's plans: in index order, no sort, no scan of
the whole table, whatever the filters."""

import datetime as dt
import itertools
import json
import uuid

import orjson
import pytest

from voyagent.ids import new_id
from voyagent.jsonio import timestamp
from voyagent.pgcopy import TextColumn
from voyagent.services import audit_log

UTC = dt.timezone.utc
FORMULA_STARTS = "=+-@\t\r"  # endpoints.md, GET /audit/export.csv


# --- the rules, read in Python ------------------------------------------------------------------------------


def _field(value):
    """One RFC 4180 field of a wire value: '' for null, ' before a formula start, quoted only when needed."""
    if not value:
        return ""
    if value[0] in FORMULA_STARTS:
        value = "'" + value
    if any(char in value for char in '",\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def expected_record(row) -> str:
    """The record of one stored event: the AuditEvent wire values (timestamps as the JSON API writes them,
    payload extras only when set, strings JSON-escaped), jsonb as PostgreSQL writes it, CRLF at the end."""
    kind, status, error, driver = row["tool"], row["status"], row["error"], row["driver"]
    summary = audit_log.summary(kind, status, error, driver)
    extras = {}
    if driver is not None:
        extras["driver"] = driver
    if error is not None:
        extras["error"] = error
    if row["approval_required"]:
        extras["approval_required"] = True
    if row["approved_by"] is not None:
        extras["approved_by"] = str(row["approved_by"])
    if row["approved_at"] is not None:
        extras["approved_at"] = timestamp(row["approved_at"])
    if row["completed_at"] is not None:
        extras["completed_at"] = timestamp(row["completed_at"])
    tail = ("," + orjson.dumps(extras).decode()[1:]) if extras else "}"
    payload = f'{{"inputs":{row["inputs"]},"outputs":{row["outputs"]},"entity_refs":{row["entity_refs"]}{tail}'
    return (f'{timestamp(row["started_at"])},{_field(kind)},{"user" if row["actor_kind"] == "human" else row["actor_kind"]},'
            f'{row["actor_id"] or ""},{_field(row["actor_email"])},'
            f'{"error" if status in ("failed", "rejected") else "ok"},{_field(summary)},'
            f'"{payload.replace(chr(34), chr(34) * 2)}"\r\n')


# --- awkward events ---------------------------------------------------------------------------------------------

NASTY_TEXT = ["plain", "", "a,b", 'say "hi"', "line\nbreak", "cr\rhere", "crlf\r\nend", "tab\tinside", "ünï ✈ 😀",
              "back\\slash", "ctl\x01\x1f\x7f", "  spaced  ", *(start + "1+2" for start in FORMULA_STARTS),
              "=HYPERLINK(\"http://x\",\"y\")", "'already quoted", "-", "@"]
INSTANTS = [dt.datetime(2025, 3, 5, 9, 30, tzinfo=UTC), dt.datetime(2025, 3, 5, 9, 30, 0, 250, tzinfo=UTC),
            dt.datetime(2025, 3, 5, 9, 30, 1, 500000, tzinfo=UTC), dt.datetime(2025, 3, 5, 9, 30, 2, 123456, tzinfo=UTC),
            dt.datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), dt.datetime(1999, 1, 2, 3, 4, 5, 60, tzinfo=UTC)]
JSONS = [{}, {"note": "a,b \"q\" \n", "n": [1, 2.5, None, True, False], "deep": {"x": {"y": "=1+2"}}},
         {"unicode": "Müller ✈ 😀", "esc": "\\ \t \u0001", "big": 12345678901234567890, "float": 1e-7}]


async def _user(db, tenant_id, email):
    user_id = new_id()
    await db.execute("INSERT INTO users (id, tenant_id, email, display_name) VALUES ($1, $2, $3, 'Exporter')",
                     user_id, tenant_id, email)
    return user_id


async def _awkward_tenant(db):
    tenant_id = new_id()
    await db.execute("INSERT INTO tenants (id, display_name) VALUES ($1, 'Export bytes')", tenant_id)
    tag = uuid.uuid4().hex[:8]
    actors = [None] + [await _user(db, tenant_id, f"{start}{tag}{n}@example.com")
                       for n, start in enumerate(["", "=", "+", "-", "a,b", '"q"'])]
    texts = itertools.cycle(NASTY_TEXT)
    rows = []
    for n in range(3 * len(NASTY_TEXT)):
        kind = next(texts) or "empty.kind"  # kind (tool) may be any text but is never null
        error = next(texts) if n % 3 == 0 else None
        driver = next(texts) if n % 2 == 0 else None
        approved = n % 4 == 0
        rows.append((new_id(), tenant_id, actors[n % len(actors)], ["human", "agent", "system"][n % 3], kind, driver,
                     json.dumps(JSONS[n % 3]), json.dumps(JSONS[(n + 1) % 3]), json.dumps(JSONS[(n + 2) % 3]), error,
                     approved, actors[1] if approved else None, INSTANTS[(n + 1) % 6] if approved else None,
                     INSTANTS[n % 6] + dt.timedelta(minutes=n),
                     INSTANTS[(n + 2) % 6] if n % 5 else None,
                     ["started", "succeeded", "failed", "rejected", "cancelled"][n % 5]))
    await db.executemany(
        "INSERT INTO audit_events (id, tenant_id, actor_id, actor_kind, tool, driver, inputs, outputs, entity_refs,"
        " error, approval_required, approved_by, approved_at, started_at, completed_at, status) VALUES ($1, $2, $3,"
        " $4::actor_kind, $5, $6, $7::jsonb, $8::jsonb, $9::jsonb, $10, $11, $12, $13, $14, $15, $16::audit_status)",
        rows)
    return tenant_id


async def _export_bytes(db, tenant_id, filters=audit_log.AuditFilters()) -> bytes:
    """What the handler streams after the header: the values of the binary COPY of the export statement."""
    text, args = audit_log.export_statement(tenant_id, filters)
    records = TextColumn()
    out = []

    async def collect(chunk: bytes) -> None:
        out.append(records.feed(chunk))

    await db.copy_from_query(text, *args, output=collect, format="binary")
    assert records.done and not records._pending
    return b"".join(out)


async def test_postgresql_writes_each_record_exactly_as_the_rules_say(db):
    tenant_id = await _awkward_tenant(db)
    expected = await _expected_export(db, tenant_id)
    produced = await _export_bytes(db, tenant_id)
    assert produced.count(b"\r\n") >= 3 * len(NASTY_TEXT)
    assert produced == expected  # the whole stream, byte for byte, in order


async def _expected_export(db, tenant_id) -> bytes:
    rows = await db.fetch(
        "SELECT a.*, a.inputs::text AS inputs, a.outputs::text AS outputs, a.entity_refs::text AS entity_refs,"
        " a.actor_kind::text AS actor_kind, a.status::text AS status, u.email AS actor_email"
        " FROM audit_events a LEFT JOIN users u ON u.id = a.actor_id WHERE a.tenant_id = $1"
        " ORDER BY a.started_at DESC, a.id DESC", tenant_id)
    return b"".join(expected_record(row).encode() for row in rows)


async def test_records_follow_every_change_of_their_event_and_of_its_actors_email(db):
    """Each event keeps its record but the e-mail (migration 0009): an update of any column the record shows, and
    a new e-mail of the actor, are in the next export."""
    tenant_id = await _awkward_tenant(db)
    await db.execute(
        "UPDATE audit_events SET status = 'failed', error = 'no seats, \"sorry\"', driver = '=drv',"
        " completed_at = '2025-03-06T01:02:03.5Z', approval_required = true, approved_at = '2025-03-06T01:00:00Z',"
        " outputs = '{\"late\": \"=x\"}', inputs = '{}', entity_refs = '{\"id\": \"a,b\"}', tool = '+t'"
        " WHERE tenant_id = $1 AND status = 'started'", tenant_id)
    await db.execute("UPDATE audit_events SET status = 'succeeded', error = NULL, driver = NULL, completed_at = NULL,"
                     " approval_required = false, approved_by = NULL, approved_at = NULL, actor_id = NULL,"
                     " actor_kind = 'agent', started_at = started_at + interval '1 microsecond'"
                     " WHERE tenant_id = $1 AND status = 'rejected'", tenant_id)
    await db.execute("UPDATE users SET email = '@' || email WHERE tenant_id = $1", tenant_id)
    produced = await _export_bytes(db, tenant_id)
    assert b"no seats" in produced and b"'@" in produced  # the changes are there…
    assert produced == await _expected_export(db, tenant_id)  # …and every record is still exactly as the rules say


async def test_the_binary_copy_reader_reassembles_rows_cut_anywhere(db):
    tenant_id = await _awkward_tenant(db)
    text, args = audit_log.export_statement(tenant_id, audit_log.AuditFilters())
    chunks = []

    async def collect(chunk: bytes) -> None:
        chunks.append(chunk)

    await db.copy_from_query(text, *args, output=collect, format="binary")
    stream = b"".join(chunks)
    whole = TextColumn()
    reference = whole.feed(stream)
    for size in (1, 2, 5, 7, 19, 64, 1000):  # header, row headers and values split at every boundary
        reader = TextColumn()
        pieces = [reader.feed(stream[i:i + size]) for i in range(0, len(stream), size)]
        assert b"".join(pieces) == reference and reader.done and reader.rows == whole.rows


def test_the_binary_copy_reader_refuses_other_streams():
    with pytest.raises(ValueError):
        TextColumn().feed(b"id\tname\n1\tx\n" + b"\x00" * 20)


# --- plans ----------------------------------------------------------------------------------------------------


def _nodes(plan):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


@pytest.fixture
async def big_log(db):
    """One tenant with 6000 events of a few kinds and actors among smaller tenants, with fresh statistics."""
    tenants = []
    start = dt.datetime(2025, 1, 1, tzinfo=UTC)
    for count in (6000, 800, 800, 800):
        tenant_id = new_id()
        await db.execute("INSERT INTO tenants (id, display_name) VALUES ($1, 'Plans')", tenant_id)
        actors = [await _user(db, tenant_id, f"plans-{uuid.uuid4().hex[:12]}@example.com") for _ in range(5)]
        await db.copy_records_to_table(
            "audit_events", columns=["id", "tenant_id", "actor_id", "actor_kind", "tool", "started_at", "status"],
            records=[(new_id(), tenant_id, actors[i % 5], "human", ["a.one", "b.two", "c.three", "d.four"][i % 4],
                      start + dt.timedelta(minutes=i), "succeeded") for i in range(count)])
        tenants.append((tenant_id, actors))
    await db.execute("ANALYZE audit_events")
    return tenants[0]


SHAPES = {
    "none": {},
    "days": {"day_from": dt.date(2025, 1, 2), "day_to": dt.date(2025, 1, 3)},
    "kind": {"kinds": ("b.two",)},
    "kinds": {"kinds": ("a.one", "c.three")},
    "actor": {"actor": True},
    "actor + days": {"actor": True, "day_from": dt.date(2025, 1, 2), "day_to": dt.date(2025, 1, 3)},
}


@pytest.mark.parametrize("label", list(SHAPES))
async def test_the_export_walks_an_index_in_list_order_without_sorting_the_rows(db, big_log, label):
    tenant_id, actors = big_log
    shape = dict(SHAPES[label])
    actor_id = actors[0] if shape.pop("actor", False) else None
    filters = audit_log.AuditFilters(actor_id=actor_id, **shape)
    text, args = audit_log.export_statement(tenant_id, filters)
    async with db.transaction():  # as the handler plans its COPY: for the values, sorts discouraged
        await db.execute("SET LOCAL enable_sort = off")
        await db.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        plan = json.loads(await db.fetchval("EXPLAIN (FORMAT JSON) " + text, *args))[0]["Plan"]
    nodes = [(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in _nodes(plan)]
    assert not [n for n in nodes if n[0] == "Seq Scan" and n[1] == "audit_events"], (label, nodes)
    assert not [n for n in nodes if n[0] == "Sort"], (label, nodes)  # an Incremental Sort on id ties streams
    assert any(n[2] and n[2].startswith("audit_events_tenant_id_") for n in nodes), (label, nodes)
    exported = (await _export_bytes(db, tenant_id, filters)).split(b"\r\n")[:-1]
    where = ["a.tenant_id = $1"] + (["a.actor_id = $2"] if actor_id else [])
    listed = await db.fetch(
        f"SELECT a.started_at FROM audit_events a WHERE {' AND '.join(where)} ORDER BY a.started_at DESC, a.id DESC",
        *([tenant_id, actor_id] if actor_id else [tenant_id]))
    if label in ("none", "actor"):
        assert [line.split(b",", 1)[0].decode() for line in exported] == [timestamp(r["started_at"]) for r in listed]
