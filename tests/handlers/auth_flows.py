"""Small client-side helpers shared by the auth endpoint tests (what an API client would write)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pyotp
from aiohttp.test_utils import TestClient

PASSWORD = "Sturdy-passw0rd-42"


def new_email(label: str = "user") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sign_up(client: TestClient, *, email: str | None = None, password: str = PASSWORD,
                  full_name: str = "Ada Lovelace", agency_name: str = "Ada Travel") -> dict[str, Any]:
    """POST /auth/sign-up that must succeed; returns the AuthResponse."""
    response = await client.post("/auth/sign-up", json={"email": email or new_email(), "password": password,
                                                        "full_name": full_name, "agency_name": agency_name})
    assert response.status == 201, await response.text()
    return await response.json()


async def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    return await client.post("/auth/sign-in", json={"email": email, "password": password})


def totp_code(secret: str, steps: int = 0) -> str:
    """The code of ``secret`` ``steps`` 30-second steps from now."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps)


def current_step() -> int:
    """The TOTP step number now (Unix time ÷ 30, rounded down)."""
    return int(time.time()) // 30


def code_at(secret: str, step: int) -> str:
    """The code of ``secret`` for one step number."""
    return pyotp.TOTP(secret).generate_otp(step)


def wrong_code(secret: str) -> str:
    """A 6-digit code that matches none of the accepted steps (-1, 0, +1)."""
    near = {totp_code(secret, s) for s in (-1, 0, 1)}
    return next(c for c in (f"{n:06d}" for n in range(1000)) if c not in near)


async def enable_totp(client: TestClient, headers: dict[str, str]) -> str:
    """Set up and confirm 2FA for the caller; returns the secret.

    Confirmed with the previous step's code, so the current code (and the next) stay unused: codes are single use.
    """
    setup = await client.post("/auth/totp/setup", headers=headers)
    assert setup.status == 200, await setup.text()
    secret = (await setup.json())["secret"]
    confirm = await client.post("/auth/totp/verify", json={"code": totp_code(secret, -1)}, headers=headers)
    assert confirm.status == 200, await confirm.text()
    return secret


def fresh_prefix(settings) -> str:
    """A Redis key prefix of one test's own (under the run's prefix, so it is cleaned up with it)."""
    return f"{settings.redis_prefix}{uuid.uuid4().hex[:8]}:"
