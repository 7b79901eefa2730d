"""Which agent backend runs the turns (chat-and-agent.md §10, operations.md §4 Agent): ``VOYAGENT_AGENT_BACKEND``.

``offline`` (the default) is the built-in agent of §8; ``<module>:<factory>`` a custom backend whose factory is
called once at start-up; ``anthropic`` the LLM backend of §10.2 (``voyagent.agent.anthropic``). A custom value
that cannot be imported stops start-up with one line naming the variable.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

import aiohttp

from voyagent.agent.anthropic import create_anthropic_backend
from voyagent.agent.interface import Backend
from voyagent.agent.offline import OfflineBackend
from voyagent.config import ConfigError, Settings

VARIABLE = "VOYAGENT_AGENT_BACKEND"


def load_factory(spec: str) -> Callable[[], Backend]:
    """The factory named by ``<module>:<factory>`` (``ConfigError`` naming the variable when it cannot be had)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(VARIABLE, f"{spec!r} is not <module>:<factory>")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError and whatever the module raises while importing
        raise ConfigError(VARIABLE, f"cannot import {module_name!r}: {exc}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ConfigError(VARIABLE, f"{module_name!r} has no callable {attribute!r}")
    return factory


def check(settings: Settings) -> None:
    """Start-up step 6 before any worker starts: a custom backend must at least be importable."""
    if settings.agent_backend not in ("offline", "anthropic"):
        load_factory(settings.agent_backend)


def create_backend(settings: Settings, database: Any, sql: Any, http: aiohttp.ClientSession | None = None) -> Backend:
    """The configured backend, built once per worker at start-up (``http``: the worker's client session, which
    the ``anthropic`` backend talks to the provider through)."""
    spec = settings.agent_backend
    if spec == "offline":
        return OfflineBackend(database, sql)
    if spec == "anthropic":
        if http is None:
            raise ValueError("the anthropic backend needs the worker's HTTP client session")
        return create_anthropic_backend(settings, http=http, database=database, sql=sql)
    backend = load_factory(spec)()
    if not isinstance(getattr(backend, "name", None), str) or not callable(getattr(backend, "run_turn", None)):
        raise ConfigError(VARIABLE, f"{spec!r} returned an object without a name and run_turn")
    return backend


def is_ready(backend: Backend) -> bool:
    """§2 step 1c: a backend without a ``ready`` member can always run."""
    return bool(getattr(backend, "ready", True))
