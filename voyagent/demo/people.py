"""The demo agency and its staff, one user per role, made by the services sign-up and invites use.

The admin signs up (tenant, settings, admin); every other member is invited by the admin and accepts, so the
audit log shows the same ``invite.created`` / ``invite.accepted`` trail a real agency's would. Passwords are
random and kept in the data directory (mode 0600), so a second run can print them again.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import uuid
from pathlib import Path
from typing import Any

from voyagent.config import Settings
from voyagent.services import api_keys, identity, invites
from voyagent.services.passwords import PasswordService
from voyagent.services.refresh_tokens import ClientInfo
from voyagent.services.token_store import create_token_store

AGENCY_NAME = "Saffron Trails Travel (demo)"
DOMAIN = "saffron-trails.example"
STAFF = (
    ("Asha Rao", f"admin@{DOMAIN}", "agency_admin"),
    ("Vikram Mehta", f"ticketing@{DOMAIN}", "ticketing_lead"),
    ("Priya Nair", f"accounts@{DOMAIN}", "accounting_lead"),
    ("Rohan Das", f"rohan.das@{DOMAIN}", "agent"),
    ("Meera Iyer", f"meera.iyer@{DOMAIN}", "agent"),
    ("Kabir Singh", f"kabir.singh@{DOMAIN}", "viewer"),
)
ADMIN_EMAIL = STAFF[0][1]
CLIENT = ClientInfo(user_agent="voyagent demo", ip=None)
CREDENTIALS_FILE = "demo-credentials.json"


@dataclasses.dataclass(frozen=True, slots=True)
class Member:
    full_name: str
    email: str
    role: str
    password: str
    user_id: uuid.UUID


@dataclasses.dataclass(frozen=True, slots=True)
class Agency:
    tenant_id: uuid.UUID
    members: tuple[Member, ...]

    def member(self, role: str) -> Member:
        return next(member for member in self.members if member.role == role)

    @property
    def admin(self) -> Member:
        return self.member("agency_admin")


def new_password() -> str:
    """16 random URL-safe characters plus a digit (the strength rules want a letter and a digit)."""
    return secrets.token_urlsafe(12) + str(secrets.randbelow(10)) + "a"


async def existing_tenant(conn: Any, sql: Any) -> uuid.UUID | None:
    """The demo agency's tenant when an earlier run made it (its admin's e-mail is registered)."""
    user = await sql.get_user_by_email(conn, email=ADMIN_EMAIL)
    return None if user is None else user["tenant_id"]


async def create_agency(database: Any, sql: Any, settings: Settings, passwords: PasswordService, step: Any) -> Agency:
    """Sign up the admin, then invite and accept every other member; one step per member."""
    tokens = create_token_store(None, settings.redis_prefix)
    plain = {email: new_password() for _, email, _ in STAFF}
    full_name, email, _ = STAFF[0]
    password_hash = await passwords.hash(plain[email])
    async with database.transaction() as conn:
        response, _ = await identity.sign_up(conn, sql, settings, tokens, {
            "email": email, "password": plain[email], "full_name": full_name, "agency_name": AGENCY_NAME,
        }, password_hash, CLIENT)
        admin_id = uuid.UUID(response["user"]["id"])
        tenant_id = uuid.UUID(response["user"]["tenant_id"])
        await sql.mark_email_verified(conn, id=admin_id, email=email)
    members = [Member(full_name, email, "agency_admin", plain[email], admin_id)]
    step.advance()
    for full_name, email, role in STAFF[1:]:
        async with database.transaction() as conn:
            _, token = await invites.create(conn, sql, tenant_id=tenant_id, inviter_id=admin_id, email=email,
                                            role=role, ttl_days=settings.invite_ttl_days)
        token_hash = invites.hash_token(token)
        password_hash = await passwords.hash(plain[email])
        async with database.connection() as conn:
            invite = await invites.acceptable_invite(conn, sql, token_hash, plain[email])
        async with database.transaction() as conn:
            response = await invites.accept(conn, sql, settings, invite, token_hash=token_hash,
                                            password_hash=password_hash, full_name=full_name, client=CLIENT)
        members.append(Member(full_name, email, role, plain[email], uuid.UUID(response["user"]["id"])))
        step.advance()
    return Agency(tenant_id, tuple(members))


INTEGRATION_KEY_NAME = "Booking engine (demo integration)"
INVITED = (("new.agent", "agent"), ("former.intern", "viewer"))


async def add_integrations(database: Any, sql: Any, settings: Settings, agency: Agency) -> str:
    """An integrator's API key with read-and-write scopes, one invite waiting and one revoked: what an agency's
    settings pages show. The key's plaintext (returned) is shown this once, like the API does."""
    async with database.transaction() as conn:
        key, _ = await api_keys.create_key(conn, sql, tenant_id=agency.tenant_id, creator_id=agency.admin.user_id,
                                           name=INTEGRATION_KEY_NAME, expires_in_days=365,
                                           scopes=["enquiries:write", "chat:write", "reports:read"])
        rows = [(await invites.create(conn, sql, tenant_id=agency.tenant_id, inviter_id=agency.admin.user_id,
                                      email=f"{local}@{DOMAIN}", role=role,
                                      ttl_days=settings.invite_ttl_days))[0] for local, role in INVITED]
        await invites.revoke(conn, sql, tenant_id=agency.tenant_id, invite_id=rows[-1]["id"],
                             actor_id=agency.admin.user_id)
    return key


def save_credentials(data_dir: Path, agency: Agency, api_key: str) -> Path:
    """The members, their passwords and the integration key, readable by this user only (the next run prints
    them again)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / CREDENTIALS_FILE
    payload = {"members": [{"full_name": m.full_name, "email": m.email, "role": m.role, "password": m.password}
                           for m in agency.members], "api_key": api_key}
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
    return path


def load_credentials(data_dir: Path) -> dict[str, Any] | None:
    """What ``save_credentials`` wrote, or None (another data directory made the demo)."""
    try:
        return json.loads((data_dir / CREDENTIALS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
