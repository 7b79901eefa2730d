"""The demo's stages in order, on one database, with their progress."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from voyagent.app import load_queries
from voyagent.config import Settings
from voyagent.db import Database
from voyagent.demo import conversations, enquiries, finance, people, plan
from voyagent.demo.agent import DemoAgent, SimulatedClock
from voyagent.demo.progress import Progress
from voyagent.services.passwords import PasswordService

ENQUIRIES = 2400


@dataclasses.dataclass(frozen=True, slots=True)
class DemoOutcome:
    """``created`` is False when an earlier run had made the demo (then nothing was changed)."""

    created: bool
    tenant_id: Any
    credentials: dict[str, Any] | None
    counts: dict[str, int]


async def run_demo(settings: Settings, dsn: str, progress: Progress, *,
                   now: dt.datetime | None = None) -> DemoOutcome:
    now = now or dt.datetime.now(dt.timezone.utc)
    sql = load_queries()
    database = await Database.connect(dsn, 1, 4)
    passwords = None
    try:
        async with database.connection() as conn:
            tenant_id = await people.existing_tenant(conn, sql)
        if tenant_id is not None:
            return DemoOutcome(False, tenant_id, people.load_credentials(settings.data_dir), {})
        passwords = await PasswordService.start(settings)
        rng = plan.generator()
        with progress.stage("agency", total=len(people.STAFF)) as step:
            agency = await people.create_agency(database, sql, settings, passwords, step)
        api_key = await people.add_integrations(database, sql, settings, agency)
        people.save_credentials(settings.data_dir, agency, api_key)
        with progress.stage("enquiries", total=ENQUIRIES) as step:
            made = await enquiries.create_enquiries(database, sql, agency, ENQUIRIES, rng, now, step)
        agent = DemoAgent(database, sql, settings, agency, SimulatedClock(now))
        try:
            with progress.stage("conversations", total=conversations.SESSIONS) as step:
                fates = await conversations.play_sessions(database, sql, agency, agent, made, rng, now, step)
        finally:
            await agent.close()
        async with database.connection() as conn:
            open_documents = len(await sql.demo_open_documents(conn, tenant_id=agency.tenant_id))
        with progress.stage("payments", total=open_documents) as step:
            paid = await finance.settle(database, sql, agency, rng, now, step)
        counts = {"members": len(agency.members), "enquiries": len(made), "chat sessions": sum(fates.values()),
                  "documents": open_documents, "payments": paid}
        return DemoOutcome(True, agency.tenant_id, people.load_credentials(settings.data_dir), counts)
    finally:
        if passwords is not None:
            passwords.close()
        await database.close()
