"""Seed a benchmark database by COPY: one big tenant with 200 000 audit events (and the users and API keys the
benchmarks act as), plus 50 small tenants with a few events each.

    .venv/bin/python -m bench.seed_audit postgresql://postgres@127.0.0.1:5432/<scratch db> [--events 200000]

The big tenant's events are spaced 43.2 s apart (2 000 a day, newest first from ``START``), so any run of
whole days holds a known number of rows: 50 days are exactly 100 000 events.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import random
import uuid

import asyncpg

from voyagent.ids import new_id
from voyagent.services.api_key_auth import generate_key, hash_key

EVENTS_PER_DAY = 2000
START = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)  # the newest day is the one before START
STEP = dt.timedelta(days=1) / EVENTS_PER_DAY
AUDIT_COLUMNS = ("id", "tenant_id", "actor_id", "actor_kind", "tool", "driver", "entity_refs", "inputs", "outputs",
                 "error", "approval_required", "approved_by", "approved_at", "started_at", "completed_at", "status")


@dataclasses.dataclass
class Seeded:
    """What the benchmarks need to act in the big tenant."""

    tenant_id: uuid.UUID
    admin_id: uuid.UUID
    admin_email: str
    api_keys: list[str]  # plaintexts with scope audit:read, created by the admin
    first_day: dt.date  # oldest day holding events
    last_day: dt.date  # newest day holding events


def day_window(seeded: Seeded, days: int) -> tuple[str, str]:
    """(from, to) query values of the newest ``days`` whole days: ``days * 2000`` events."""
    last = seeded.last_day
    return (last - dt.timedelta(days=days - 1)).isoformat(), last.isoformat()


def _event(rng: random.Random, tenant_id: uuid.UUID, at: dt.datetime, admin_id: uuid.UUID,
           agents: list[uuid.UUID]) -> tuple:
    """One realistic stored event (the mix of kinds the product writes)."""
    pick = rng.random()
    session = str(uuid.UUID(int=rng.getrandbits(128)))
    done = at + dt.timedelta(milliseconds=rng.randint(5, 900))
    if pick < 0.35:
        actor = rng.choice(agents)
        offer = f"FLT-{rng.getrandbits(32):08X}"
        return (new_id(), tenant_id, actor, "agent", "book_offer", "sandbox", json.dumps({"session_id": session}),
                json.dumps({"offer_id": offer, "passengers": rng.randint(1, 4), "note": "window seat, please"}),
                json.dumps({"booking_ref": f"PNR{rng.getrandbits(24):06X}", "total": "48250.00"}), None, True,
                admin_id, at + dt.timedelta(seconds=20), at, done, "succeeded")
    if pick < 0.55:
        actor = rng.choice(agents)
        return (new_id(), tenant_id, actor, "agent", "hold_offer", "sandbox", json.dumps({"session_id": session}),
                json.dumps({"offer_id": f"HTL-{rng.getrandbits(32):08X}"}), "{}", "approval_expired", True, None,
                None, at, done, "cancelled")
    if pick < 0.65:
        return (new_id(), tenant_id, rng.choice(agents), "human", "auth.verify", None, "{}",
                json.dumps({"method": "GET", "path": "/audit", "remote_addr": "10.0.0.7"}), "{}", "forbidden_role",
                False, None, None, at, done, "rejected")
    if pick < 0.80:
        return (new_id(), tenant_id, admin_id, "human", "approval.granted", None, "{}",
                json.dumps({"approval_id": f"ap-t-{rng.getrandbits(48):012x}-book_offer", "session_id": session,
                            "tool_name": "book_offer", "reason": None}), "{}", None, False, None, None, at, done,
                "succeeded")
    if pick < 0.90:
        return (new_id(), tenant_id, rng.choice(agents), "agent", "issue_invoice", "sandbox",
                json.dumps({"session_id": session}), json.dumps({"amount": "1200.00", "currency": "INR"}), "{}",
                'supplier said "no", try again', False, None, None, at, done, "failed")
    return (new_id(), tenant_id, admin_id, "human", "tenant_settings.updated", None, "{}",
            json.dumps({"fields": {"locale": "hi", "timezone": "Asia/Kolkata"}}), "{}", None, False, None, None, at,
            done, "succeeded")


async def _tenant(conn: asyncpg.Connection, name: str, users: int) -> tuple[uuid.UUID, list[tuple[uuid.UUID, str]]]:
    tenant_id = new_id()
    await conn.execute("INSERT INTO tenants (id, display_name) VALUES ($1, $2)", tenant_id, name)
    await conn.execute("INSERT INTO tenant_settings (tenant_id, rate_limit_per_minute) VALUES ($1, 10000)", tenant_id)
    people = [(new_id(), f"{'admin' if i == 0 else f'agent{i}'}-{tenant_id.hex[:12]}@bench.example")
              for i in range(users)]
    await conn.copy_records_to_table(
        "users", columns=("id", "tenant_id", "email", "display_name", "role", "email_verified"),
        records=[(uid, tenant_id, email, email.split("@")[0], "agency_admin" if i == 0 else "agent", True)
                 for i, (uid, email) in enumerate(people)])
    return tenant_id, people


async def _keys(conn: asyncpg.Connection, tenant_id: uuid.UUID, creator: uuid.UUID, count: int) -> list[str]:
    keys = [generate_key() for _ in range(count)]
    await conn.copy_records_to_table(
        "api_keys", columns=("id", "tenant_id", "created_by_user_id", "name", "prefix", "key_hash", "scopes"),
        records=[(new_id(), tenant_id, creator, f"bench {i}", prefix, hash_key(key), ["audit:read"])
                 for i, (key, prefix) in enumerate(keys)])
    return [key for key, _ in keys]


async def seed(dsn: str, events: int = 200_000, small_tenants: int = 50, keys: int = 64) -> Seeded:
    """Fill an empty, migrated database; returns how to act in the big tenant."""
    rng = random.Random(20250601)
    conn = await asyncpg.connect(dsn)
    try:
        tenant_id, people = await _tenant(conn, "Bench Travels", users=6)
        admin_id, admin_email = people[0]
        agents = [uid for uid, _ in people[1:]]
        api_keys = await _keys(conn, tenant_id, admin_id, keys)
        batch: list[tuple] = []
        for n in range(events):
            batch.append(_event(rng, tenant_id, START - STEP * (n + 1), admin_id, agents))
            if len(batch) == 20_000:
                await conn.copy_records_to_table("audit_events", columns=AUDIT_COLUMNS, records=batch)
                batch.clear()
        for t in range(small_tenants):
            small_id, small_people = await _tenant(conn, f"Small Agency {t}", users=2)
            await _keys(conn, small_id, small_people[0][0], 2)
            batch.extend(_event(rng, small_id, START - dt.timedelta(minutes=7 * (i + 1)), small_people[0][0],
                                [small_people[1][0]]) for i in range(200))
        await conn.copy_records_to_table("audit_events", columns=AUDIT_COLUMNS, records=batch)
        await conn.execute("VACUUM ANALYZE audit_events")
        await conn.execute("VACUUM ANALYZE users")
    finally:
        await conn.close()
    days = events // EVENTS_PER_DAY
    return Seeded(tenant_id=tenant_id, admin_id=admin_id, admin_email=admin_email, api_keys=api_keys,
                  first_day=(START - dt.timedelta(days=max(days, 1))).date(),
                  last_day=(START - dt.timedelta(days=1)).date())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dsn")
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    seeded = asyncio.run(seed(args.dsn, args.events))
    print(f"tenant {seeded.tenant_id}: {args.events} events from {seeded.first_day} to {seeded.last_day}")


if __name__ == "__main__":
    main()
