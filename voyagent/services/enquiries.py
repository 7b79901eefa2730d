"""Enquiries: the field rules, PATCH semantics and the filters of the list (endpoints.md, Enquiries)."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import re
import uuid
from typing import Any, Mapping

import asyncpg
from pypika import Table
from pypika.terms import Criterion, Term

from voyagent.errors import ApiError, ValidationFailed, not_found, validation_item
from voyagent.ids import new_id, parse_uuid
from voyagent.listing import Count, Filter, Listing, day_end, day_start
from voyagent.pagination import Page
from voyagent.services.sessions import create_session

STATUSES = ("new", "quoted", "booked", "cancelled")
OPEN_STATUSES = frozenset({"new", "quoted"})
TERMINAL_STATUSES = frozenset({"booked", "cancelled"})
_PATCHABLE = ("customer_name", "customer_email", "customer_phone", "origin", "destination", "depart_date",
              "return_date", "pax_count", "budget_amount", "budget_currency", "status", "notes", "session_id")
# Fields whose body value is the column value as it is (the decimal arrives already rounded).
_PATCHABLE_AS_SENT = ("customer_name", "customer_email", "customer_phone", "origin", "destination", "budget_amount",
                      "budget_currency", "status", "notes")
SEARCH_COLUMNS = ("customer_name", "customer_email", "customer_phone", "origin", "destination")
_CURRENCY_RE = re.compile(r"[A-Z]{3}")

enquiries = Table("enquiries").as_("e")  # as sql/lists/enquiries.sql names it


def enquiry_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """The EnquiryResponse of a row: every query returns its UUIDs as text, and jsonio prints the dates,
    timestamps and the two-decimal budget in wire format."""
    return dict(row)


# --- field rules --------------------------------------------------------------------------------------


def _check_currency(currency: str | None) -> None:
    if currency is not None and _CURRENCY_RE.fullmatch(currency) is None:
        raise ApiError(400, "invalid_currency")


def _check_dates(depart: dt.date | None, back: dt.date | None) -> None:
    if depart is not None and back is not None and back < depart:
        raise ApiError(400, "invalid_date_range")


def _check_pax(pax_count: int | None) -> None:
    if pax_count is not None and pax_count < 1:
        raise ApiError(400, "invalid_pax_count")


def _session_id(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    parsed = parse_uuid(value)
    if parsed is None:
        raise ApiError(422, "invalid_session_id")
    return parsed


def _pax(value: Any) -> int | None:
    # JSON Schema counts 2.0 as an integer; the column wants a Python int.
    return None if value is None else int(value)


def _dates(body: Mapping[str, Any]) -> dict[str, dt.date | None]:
    """The body's date fields as dates; a schema-valid string Python cannot read (year 0000) is a 422 item."""
    parsed: dict[str, dt.date | None] = {}
    errors = []
    for field in ("depart_date", "return_date"):
        if field not in body:
            continue
        value = body[field]
        try:
            parsed[field] = None if value is None else dt.date.fromisoformat(value)
        except ValueError:
            errors.append(validation_item(["body", field], "date_from_datetime_parsing",
                                          "Input should be a valid date"))
    if errors:
        raise ValidationFailed(errors)
    return parsed


async def create_enquiry(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, user_id: uuid.UUID,
                         body: Mapping[str, Any]) -> asyncpg.Record:
    """Insert an enquiry after the create checks, in order: currency, date range, pax count, session id."""
    dates = _dates(body)
    depart, back = dates.get("depart_date"), dates.get("return_date")
    currency = body.get("budget_currency")
    pax_count = _pax(body.get("pax_count", 1))
    _check_currency(currency)
    _check_dates(depart, back)
    _check_pax(pax_count)
    session_id = _session_id(body.get("session_id"))
    return await sql.insert_enquiry(
        conn, id=new_id(), tenant_id=tenant_id, created_by_user_id=user_id, customer_name=body["customer_name"],
        customer_email=body.get("customer_email"), customer_phone=body.get("customer_phone"),
        origin=body.get("origin"), destination=body.get("destination"), depart_date=depart, return_date=back,
        pax_count=pax_count, budget_amount=body.get("budget_amount"), budget_currency=currency,
        status=body.get("status", "new"), notes=body.get("notes"), session_id=session_id)


async def get_enquiry(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, enquiry_id: str) -> asyncpg.Record:
    """One enquiry of the tenant; a malformed, unknown or foreign id is ``404 enquiry_not_found``."""
    parsed = parse_uuid(enquiry_id)
    row = None if parsed is None else await sql.get_enquiry(conn, id=parsed, tenant_id=tenant_id)
    if row is None:
        raise not_found("enquiry_not_found")
    return row


async def _lock_enquiry(conn: asyncpg.Connection, sql: Any, tenant_id: uuid.UUID, enquiry_id: str) -> asyncpg.Record:
    parsed = parse_uuid(enquiry_id)
    row = None if parsed is None else await sql.lock_enquiry(conn, id=parsed, tenant_id=tenant_id)
    if row is None:
        raise not_found("enquiry_not_found")
    return row


async def patch_enquiry(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, enquiry_id: str,
                        body: Mapping[str, Any]) -> asyncpg.Record:
    """Apply a patch (omitted = unchanged, null = cleared) in the contract's processing order."""
    dates = _dates(body)
    row = await _lock_enquiry(conn, sql, tenant_id, enquiry_id)  # 1. 404
    values = {name: row[name] for name in _PATCHABLE}
    values.update({field: body[field] for field in _PATCHABLE_AS_SENT if field in body})
    values.update(dates)
    if "pax_count" in body:
        values["pax_count"] = _pax(body["pax_count"])
    # 2. post-patch checks (a null pax_count is step 4's error, not a count below one)
    _check_currency(values["budget_currency"])
    _check_dates(values["depart_date"], values["return_date"])
    _check_pax(values["pax_count"])
    # 3. status
    if "status" in body:
        if body["status"] is None:
            raise ApiError(422, "status_cannot_be_null")
        if row["status"] in TERMINAL_STATUSES and body["status"] in OPEN_STATUSES:
            raise ApiError(400, "invalid_status_transition")
    # 4. required columns
    if "customer_name" in body and body["customer_name"] is None:
        raise ApiError(422, "customer_name_cannot_be_null")
    if "pax_count" in body and body["pax_count"] is None:
        raise ApiError(422, "pax_count_cannot_be_null")
    # 5. session link
    if "session_id" in body:
        values["session_id"] = _session_id(body["session_id"])
    # 6. apply
    return await sql.update_enquiry(conn, id=row["id"], tenant_id=tenant_id, **values)


async def promote_to_session(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, enquiry_id: str,
                             actor_id: uuid.UUID) -> asyncpg.Record:
    """Link the enquiry to a new chat session unless it has one; the row lock makes retries and races safe."""
    row = await _lock_enquiry(conn, sql, tenant_id, enquiry_id)
    if row["session_id"] is not None:
        return row
    session = await create_session(conn, sql, tenant_id=tenant_id, actor_id=actor_id)
    return await sql.link_enquiry_session(conn, id=row["id"], tenant_id=tenant_id, session_id=session["id"])


# --- the list -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class EnquiryFilters:
    """The filters of GET /enquiries that are in effect (an empty substring or ``status=all`` is no filter)."""

    status: str | None = None
    q: str | None = None
    customer_email: str | None = None
    destination: str | None = None
    origin: str | None = None
    depart_from: dt.date | None = None
    depart_to: dt.date | None = None
    created_from: dt.date | None = None
    created_to: dt.date | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, Any]) -> "EnquiryFilters":
        """Read the coerced query; inverted ranges are ``422 invalid_depart_range`` / ``invalid_created_range``."""
        status = query.get("status")
        filters = cls(status=None if status in (None, "all") else status,
                      **{name: query.get(name) or None for name in ("q", "customer_email", "destination", "origin")},
                      **{name: query.get(name) for name in ("depart_from", "depart_to", "created_from", "created_to")})
        if filters.depart_from and filters.depart_to and filters.depart_from > filters.depart_to:
            raise ApiError(422, "invalid_depart_range")
        if filters.created_from and filters.created_to and filters.created_from > filters.created_to:
            raise ApiError(422, "invalid_created_range")
        return filters

    def fingerprint(self) -> dict[str, str]:
        """The filter values a cursor is bound to."""
        return {field.name: str(value) for field in dataclasses.fields(self)
                if (value := getattr(self, field.name)) is not None}

    @property
    def status_only(self) -> bool:
        """True when nothing but (at most) a status filter is set: the counters answer ``total``."""
        return self == EnquiryFilters(status=self.status)

    def values(self) -> dict[str, Any]:
        """The filter values by name, as ``LISTING`` declares them (None: not in effect)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


class _ILike(Criterion):
    """``<column> ILIKE <pattern> ESCAPE '\\'`` (data-model.md, enquiries)."""

    def __init__(self, column: Term, pattern: Term) -> None:
        super().__init__()
        self.column = column
        self.pattern = pattern

    def nodes_(self):  # type: ignore[no-untyped-def]
        yield self
        yield from self.column.nodes_()
        yield from self.pattern.nodes_()

    def get_sql(self, **kwargs: Any) -> str:
        return f"{self.column.get_sql(**kwargs)} ILIKE {self.pattern.get_sql(**kwargs)} ESCAPE '\\'"


def like_pattern(term: str) -> str:
    """``%term%`` with ``\\``, ``%`` and ``_`` of the term escaped, so they match literally."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# The filters of GET /enquiries in SQL order. All but status have a best plan that depends on their values
# (a substring's selectivity, a date range's width), so those pages are always planned for their values.
LISTING = Listing("enquiries", enquiries, "created_at", filters=(
    Filter("status", lambda ph: enquiries.status == ph),
    Filter("q", lambda ph: Criterion.any([_ILike(enquiries.field(name), ph) for name in SEARCH_COLUMNS]),
           like_pattern, custom_plan=True),
    Filter("customer_email", lambda ph: _ILike(enquiries.customer_email, ph), like_pattern, custom_plan=True),
    Filter("destination", lambda ph: _ILike(enquiries.destination, ph), like_pattern, custom_plan=True),
    Filter("origin", lambda ph: _ILike(enquiries.origin, ph), like_pattern, custom_plan=True),
    Filter("depart_from", lambda ph: enquiries.depart_date >= ph, custom_plan=True),
    Filter("depart_to", lambda ph: enquiries.depart_date <= ph, custom_plan=True),
    Filter("created_from", lambda ph: enquiries.created_at >= ph, day_start, custom_plan=True),
    Filter("created_to", lambda ph: enquiries.created_at <= ph, day_end, custom_plan=True),
))


class TotalsCache:
    """Exact filtered totals reused while the tenant's enquiries are unchanged.

    A total is stored with the tenant's counter version read before the count, in the same transaction; the
    triggers of migration 0003 bump that version in the transaction of every change a filter could see, so
    an equal version later means an equal count (a change committed between the two reads leaves a stored
    version older than the count, which the next request's version then cannot match). Paging through a
    search counts once, not once per page.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._totals: collections.OrderedDict[tuple, tuple[int, int]] = collections.OrderedDict()

    def get(self, key: tuple, version: int) -> int | None:
        entry = self._totals.get(key)
        if entry is None or entry[0] != version:
            return None
        self._totals.move_to_end(key)
        return entry[1]

    def put(self, key: tuple, version: int, total: int) -> None:
        self._totals[key] = (version, total)
        self._totals.move_to_end(key)
        while len(self._totals) > self.capacity:
            self._totals.popitem(last=False)


async def list_enquiries(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, filters: EnquiryFilters,
                         page: Page, totals: TotalsCache | None = None) -> tuple[list[asyncpg.Record], int | None]:
    """Up to ``limit + 1`` rows of the page and the exact total (None when not asked for), in the caller's
    (read) transaction: no filter or a status alone is answered by the counters, any other by a count
    reused while the tenant's counter version is unchanged."""

    async def total(count: Count) -> int:
        if filters.status_only:
            statuses = [filters.status] if filters.status else list(STATUSES)
            return (await sql.get_enquiry_totals(conn, tenant_id=tenant_id, statuses=statuses))["total"]
        if totals is None:
            return await count()
        version = (await sql.get_enquiry_totals(conn, tenant_id=tenant_id, statuses=[]))["version"]
        found = totals.get((tenant_id, filters), version)
        if found is None:
            found = await count()
            totals.put((tenant_id, filters), version, found)
        return found

    return await LISTING.fetch(conn, tenant_id, filters.values(), page, total=total)
