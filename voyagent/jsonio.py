"""JSON encoding in the contract's wire format (UTC ``Z`` timestamps, two-decimal strings) via orjson."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any, Mapping

import orjson
from aiohttp import hdrs, web

_TWO_PLACES = decimal.Decimal("0.01")
_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value.quantize(_TWO_PLACES, rounding=decimal.ROUND_HALF_UP))
    if isinstance(value, uuid.UUID):  # asyncpg's UUID subclass is not serialised natively by orjson
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """Serialise to compact UTF-8 JSON in wire format."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


loads = orjson.loads


def timestamp(value: dt.datetime | None) -> str | None:
    """Format a timestamp as the contract's ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` (UTC)."""
    if value is None:
        return None
    return orjson.dumps(value.astimezone(dt.timezone.utc), option=orjson.OPT_UTC_Z)[1:-1].decode()


JSON_CONTENT_TYPE = {hdrs.CONTENT_TYPE: "application/json; charset=utf-8"}  # istr key: no case-folding


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON response with ``application/json; charset=utf-8`` (the header given whole: aiohttp's
    ``content_type``/``charset`` arguments parse and rebuild it on every response)."""
    return web.Response(body=dumps(data), status=status,
                        headers=JSON_CONTENT_TYPE if headers is None else {**JSON_CONTENT_TYPE, **headers})
