"""Fixtures of the end-to-end chat tests: an app with the real default (offline) backend, and one with the
anthropic backend talking to the local fake of the Messages API (tests/agent/fake_anthropic.py). Each app is
checked afterwards for a 500 answered on any request."""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from tests.agent.fake_anthropic import FakeAnthropic


async def assert_no_500(client: Any) -> None:
    text = await (await client.get("/internal/metrics")).text()
    assert 'status="500"' not in text, [line for line in text.splitlines() if 'status="500"' in line]


@pytest.fixture
def make_chat_client(make_client: Any) -> Any:
    """``make_client`` whose apps are checked for 500s when the test ends."""
    built: list[Any] = []

    async def build(**overrides: Any) -> Any:
        client = await make_client(**overrides)
        built.append(client)
        return client

    build.built = built  # type: ignore[attr-defined]
    return build


@pytest.fixture(autouse=True)
async def _no_500_answered(make_chat_client: Any) -> AsyncIterator[None]:
    yield
    for client in make_chat_client.built:
        await assert_no_500(client)


@pytest.fixture(params=["in-process", "redis"])
async def offline(request: Any, make_chat_client: Any) -> Any:
    """The default backend (no agent_backend override), with the in-process stores, then with Redis."""
    if request.param == "redis":
        return await make_chat_client(redis_url=request.getfixturevalue("redis_url"))
    return await make_chat_client()


@pytest.fixture
async def fake_provider(aiohttp_server: Any) -> FakeAnthropic:
    provider = FakeAnthropic()
    provider.server = await aiohttp_server(provider.app)  # type: ignore[attr-defined]
    return provider


@pytest.fixture
async def anthropic(make_chat_client: Any, fake_provider: FakeAnthropic) -> Any:
    """The anthropic backend, keyed, its base URL the fake provider."""
    return await make_chat_client(agent_backend="anthropic", anthropic_api_key="sk-ant-e2e-key",
                                  anthropic_base_url=str(fake_provider.server.make_url("/")))  # type: ignore[attr-defined]
