"""Fixtures of the middleware tests: bare apps (tests/middleware/bare_app.py) and a caller with a valid
access token that needs no database row (the gate never reads users for a JWT)."""

from __future__ import annotations

import dataclasses
from typing import Any, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import User, unique_email
from tests.middleware.bare_app import bare_app
from voyagent.config import Settings
from voyagent.ids import new_id
from voyagent.services.tokens import mint_access_token

MakeBareClient = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def make_bare_client(aiohttp_client: Any, settings: Settings) -> MakeBareClient:
    """``await make_bare_client(routes=add_echo_route, max_body_bytes=100)``: a client of a
    bare app with those middlewares, the routes ``routes(app)`` adds, and setting overrides."""

    async def build(*layers: str, routes: Callable[[web.Application], None] | None = None,
                    **overrides: Any) -> TestClient:
        app = bare_app(dataclasses.replace(settings, **overrides), *layers)
        if routes is not None:
            routes(app)
        return await aiohttp_client(app)

    return build


@pytest.fixture
def caller(settings: Settings) -> User:
    """An agency_admin with a valid access token, known to no database."""
    user_id, tenant_id, email = new_id(), new_id(), unique_email("caller")
    token, _, _ = mint_access_token(settings, user_id=user_id, tenant_id=tenant_id, role="agency_admin", email=email)
    return User(id=user_id, tenant_id=tenant_id, email=email, role="agency_admin", token=token)
