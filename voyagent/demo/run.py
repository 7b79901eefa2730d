"""The demo's stages in order, on one database, with their progress."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from voyagent.app import load_queries
from voyagent.config import Settings
from voyagent.db import Database
from voyagent.demo import enquiries, people, plan
from voyagent.demo.progress import Progress
from voyagent.services.passwords import PasswordService

ENQUIRIES = 2400


@dataclasses.dataclass(frozen=True, slots=True)
class DemoOutcome:
    """``created`` is False when an earlier run had made the demo (then nothing was changed)."""

    created: bool
    tenant_id: Any
    credentials: list[dict[str, str]] | None
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
        people.save_credentials(settings.data_dir, agency)
        with progress.stage("enquiries", total=ENQUIRIES) as step:
            enquiry_ids = await enquiries.create_enquiries(database, sql, agency, ENQUIRIES, rng, now, step)
        counts = {"members": len(agency.members), "enquiries": len(enquiry_ids)}
        return DemoOutcome(True, agency.tenant_id, people.load_credentials(settings.data_dir), counts)
    finally:
        if passwords is not None:
            passwords.close()
        await database.close()
