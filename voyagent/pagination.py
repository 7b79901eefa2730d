"""Keyset pagination: opaque, HMAC-signed cursors bound to the tenant, the list and its filter values.

A cursor holds the last row's sort key (timestamp with microseconds, id) plus a fingerprint of
(list name, tenant, filters); a cursor from another tenant, list or filter set is ``invalid_cursor``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import hashlib
import hmac
import uuid
from typing import Any, Callable, Mapping, Sequence

import orjson

from voyagent.errors import ApiError
from voyagent.ids import parse_uuid

_SIG_BYTES = 12


def invalid_cursor() -> ApiError:
    return ApiError(422, "invalid_cursor")


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """The effective paging request of a list call."""

    limit: int
    offset: int
    after: tuple[dt.datetime, Any] | None  # (sort timestamp, id as the list's id type) of the cursor position
    include_total: bool


class CursorCodec:
    """Signs and checks cursors with a key derived from the auth secret."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"voyagent-cursor\x00" + secret.encode("utf-8")).digest()

    def _fingerprint(self, scope: str, tenant_id: uuid.UUID, filters: Mapping[str, Any]) -> str:
        canonical = orjson.dumps([scope, str(tenant_id), filters], option=orjson.OPT_SORT_KEYS, default=str)
        return hashlib.sha256(canonical).hexdigest()[:16]

    def encode(self, scope: str, tenant_id: uuid.UUID, filters: Mapping[str, Any], when: dt.datetime,
               row_id: Any) -> str:
        micros = _epoch_micros(when)  # exact integer microseconds; timestamp() is a float
        payload = orjson.dumps([micros, str(row_id), self._fingerprint(scope, tenant_id, filters)])
        signature = hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIG_BYTES]
        return base64.urlsafe_b64encode(payload + signature).rstrip(b"=").decode("ascii")

    def decode(self, cursor: str, scope: str, tenant_id: uuid.UUID, filters: Mapping[str, Any],
               parse_id: Callable[[str], Any] = parse_uuid) -> tuple[dt.datetime, Any]:
        """The (timestamp, id) position, the id read by ``parse_id`` (None: not an id of this list), or
        ``422 invalid_cursor`` for anything tampered, foreign or unreadable."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise invalid_cursor() from None
        if len(raw) <= _SIG_BYTES or len(cursor) > 512:
            raise invalid_cursor()
        payload, signature = raw[:-_SIG_BYTES], raw[-_SIG_BYTES:]
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIG_BYTES]
        if not hmac.compare_digest(signature, expected):
            raise invalid_cursor()
        try:
            micros, row_id, fingerprint = orjson.loads(payload)
        except (orjson.JSONDecodeError, ValueError, TypeError):
            raise invalid_cursor() from None
        if fingerprint != self._fingerprint(scope, tenant_id, filters) or not isinstance(row_id, str):
            raise invalid_cursor()
        parsed_id = parse_id(row_id)
        if parsed_id is None:
            raise invalid_cursor()
        return _from_epoch_micros(int(micros)), parsed_id

    def page(self, query: Mapping[str, Any], scope: str, tenant_id: uuid.UUID, filters: Mapping[str, Any],
             parse_id: Callable[[str], Any] = parse_uuid) -> Page:
        """Read ``limit``/``offset``/``cursor``/``include_total`` (already schema-validated)."""
        limit = int(query["limit"])
        offset = int(query.get("offset") or 0)
        cursor = query.get("cursor")
        after = None
        if cursor is not None:
            if offset != 0:
                raise invalid_cursor()
            after = self.decode(cursor, scope, tenant_id, filters, parse_id)
        include_total = query.get("include_total")
        return Page(limit=limit, offset=offset, after=after, include_total=True if include_total is None
                    else bool(include_total))

    def next_cursor(self, rows: Sequence[Any], page: Page, scope: str, tenant_id: uuid.UUID,
                    filters: Mapping[str, Any], time_key: str = "created_at", id_key: str = "id") -> str | None:
        """Given ``limit + 1`` fetched rows: the cursor after the last returned row, or None."""
        if len(rows) <= page.limit:
            return None
        last = rows[page.limit - 1]
        return self.encode(scope, tenant_id, filters, last[time_key], last[id_key])


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _epoch_micros(when: dt.datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_epoch_micros(micros: int) -> dt.datetime:
    try:
        return _EPOCH + dt.timedelta(microseconds=micros)
    except OverflowError:
        raise invalid_cursor() from None


def paginated(items_key: str, items: list[Any], total: int | None, page: Page, next_cursor: str | None) -> dict:
    """The response envelope every paginated list shares."""
    return {items_key: items, "total": total, "limit": page.limit, "offset": 0 if page.after else page.offset,
            "next_cursor": next_cursor}
