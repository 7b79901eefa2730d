"""Enquiries: the field rules, PATCH semantics and the pypika-built list query (endpoints.md, Enquiries)."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import functools
import re
import uuid
from typing import Any, Callable, Mapping

import asyncpg
from pypika import Order, Parameter, PostgreSQLQuery, Table
from pypika import functions as fn
from pypika.functions import Cast
from pypika.terms import Criterion, Term, Tuple

from voyagent.errors import ApiError, ValidationFailed, not_found, validation_item
from voyagent.ids import new_id, parse_uuid
from voyagent.pagination import Page, invalid_cursor
from voyagent.services.sessions import create_session

LIST_SCOPE = "enquiries"  # cursor scope of GET /enquiries
INT8_MAX = 2**63 - 1  # the largest OFFSET PostgreSQL takes; a larger one (up to 19 digits) is echoed as sent
STATUSES = ("new", "quoted", "booked", "cancelled")
OPEN_STATUSES = frozenset({"new", "quoted"})
TERMINAL_STATUSES = frozenset({"booked", "cancelled"})
COLUMNS = ("id", "tenant_id", "created_by_user_id", "customer_name", "customer_email", "customer_phone", "origin",
           "destination", "depart_date", "return_date", "pax_count", "budget_amount", "budget_currency", "status",
           "notes", "session_id", "created_at", "updated_at")
_TEXT_COLUMNS = frozenset({"id", "tenant_id", "created_by_user_id", "session_id"})  # UUIDs, selected as text
_PATCHABLE = ("customer_name", "customer_email", "customer_phone", "origin", "destination", "depart_date",
              "return_date", "pax_count", "budget_amount", "budget_currency", "status", "notes", "session_id")
# Fields whose body value is the column value as it is (the decimal arrives already rounded).
_PATCHABLE_AS_SENT = ("customer_name", "customer_email", "customer_phone", "origin", "destination", "budget_amount",
                      "budget_currency", "status", "notes")
SEARCH_COLUMNS = ("customer_name", "customer_email", "customer_phone", "origin", "destination")
_CURRENCY_RE = re.compile(r"[A-Z]{3}")
_DAY_END = dt.time(23, 59, 59, 999_999, tzinfo=dt.timezone.utc)
_DAY_START = dt.time(0, 0, tzinfo=dt.timezone.utc)

enquiry_counts = Table("enquiry_counts")
enquiries = Table("enquiries").as_("e")  # qualified: ORDER BY e.id is the column, not the text alias


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


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, _DAY_START)


def _day_end(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, _DAY_END)  # 23:59:59.999999Z: no date overflow on 9999-12-31


def _same(value: Any) -> Any:
    return value


# filter → (condition on a placeholder, parameter value from the filter value); the order is the SQL's.
_FILTER_SQL: dict[str, tuple[Callable[[Parameter], Criterion], Callable[[Any], Any]]] = {
    "status": (lambda ph: enquiries.status == ph, _same),
    "q": (lambda ph: Criterion.any([_ILike(enquiries.field(name), ph) for name in SEARCH_COLUMNS]), like_pattern),
    "customer_email": (lambda ph: _ILike(enquiries.customer_email, ph), like_pattern),
    "destination": (lambda ph: _ILike(enquiries.destination, ph), like_pattern),
    "origin": (lambda ph: _ILike(enquiries.origin, ph), like_pattern),
    "depart_from": (lambda ph: enquiries.depart_date >= ph, _same),
    "depart_to": (lambda ph: enquiries.depart_date <= ph, _same),
    "created_from": (lambda ph: enquiries.created_at >= ph, _day_start),
    "created_to": (lambda ph: enquiries.created_at <= ph, _day_end),
}


def _bind(tenant_id: uuid.UUID, filters: EnquiryFilters) -> tuple[tuple[str, ...], list[Any]]:
    """The filters in effect (the query's shape) and the parameter values, tenant first."""
    shape: list[str] = []
    values: list[Any] = [tenant_id]
    for name, (_, to_value) in _FILTER_SQL.items():
        value = getattr(filters, name)
        if value is not None:
            shape.append(name)
            values.append(to_value(value))
    return tuple(shape), values


def _where(shape: tuple[str, ...]) -> Criterion:
    """``tenant_id = $1`` and one condition per filter of the shape, on ``$2``, ``$3``, …"""
    conditions = [enquiries.tenant_id == Parameter("$1")]
    conditions += [_FILTER_SQL[name][0](Parameter(f"${n}")) for n, name in enumerate(shape, start=2)]
    return Criterion.all(conditions)


_SELECT = [Cast(enquiries.field(name), "text", alias=name) if name in _TEXT_COLUMNS else enquiries.field(name)
           for name in COLUMNS]


@functools.lru_cache(maxsize=2048)
def _page_sql(shape: tuple[str, ...], keyset: bool, offset: bool) -> str:
    """The page statement of one query shape, built once (values never reach the text)."""
    n = len(shape) + 2
    query = PostgreSQLQuery.from_(enquiries).select(*_SELECT).where(_where(shape))
    if keyset:
        query = query.where(Tuple(enquiries.created_at, enquiries.id) < Tuple(Parameter(f"${n}"),
                                                                              Parameter(f"${n + 1}")))
        n += 2
    query = query.orderby(enquiries.created_at, order=Order.desc).orderby(enquiries.id, order=Order.desc)
    query = query.limit(Parameter(f"${n}"))
    if offset:
        query = query.offset(Parameter(f"${n + 1}"))
    return query.get_sql()


@functools.lru_cache(maxsize=512)
def _count_sql(shape: tuple[str, ...]) -> str:
    """``count(*)`` of one query shape, with the tenant's counter version read in the same snapshot."""
    version = (PostgreSQLQuery.from_(enquiry_counts)
               .select(Cast(fn.Coalesce(fn.Sum(enquiry_counts.version), 0), "bigint"))
               .where(enquiry_counts.tenant_id == Parameter("$1")))
    return PostgreSQLQuery.from_(enquiries).select(fn.Count("*"), version).where(_where(shape)).get_sql()


def page_query(tenant_id: uuid.UUID, filters: EnquiryFilters, page: Page) -> tuple[str, list[Any]]:
    """``limit + 1`` rows after the cursor (keyset) or at the offset, newest first: (SQL, parameters)."""
    shape, args = _bind(tenant_id, filters)
    if page.after is not None:
        when, row_id = page.after
        after_id = parse_uuid(row_id)
        if after_id is None:
            raise invalid_cursor()
        args += [when, after_id]
    args.append(page.limit + 1)
    with_offset = page.after is None and page.offset > 0
    if with_offset:
        args.append(min(page.offset, INT8_MAX))  # past 2^63 - 1 rows every page is empty anyway
    return _page_sql(shape, page.after is not None, with_offset), args


def count_query(tenant_id: uuid.UUID, filters: EnquiryFilters) -> tuple[str, list[Any]]:
    """(count, tenant counter version) of the rows matching the filters, paging ignored: (SQL, parameters)."""
    shape, args = _bind(tenant_id, filters)
    return _count_sql(shape), args


class TotalsCache:
    """Exact filtered totals reused while the tenant's enquiries are unchanged.

    A total is stored with the tenant's counter version read in the same snapshot as the count; the
    triggers of migration 0003 bump that version in the transaction of every change a filter could see,
    so an equal version means an equal count. Paging through a search counts once, not once per page.
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


async def _filtered_total(conn: asyncpg.Connection, sql: Any, tenant_id: uuid.UUID, filters: EnquiryFilters,
                          totals: TotalsCache | None) -> int:
    key = (tenant_id, filters)
    if totals is not None:
        current = await sql.get_enquiry_totals(conn, tenant_id=tenant_id, statuses=[])
        cached = totals.get(key, current["version"])
        if cached is not None:
            return cached
    text, args = count_query(tenant_id, filters)
    total, version = await conn.fetchrow(text, *args)
    if totals is not None:
        totals.put(key, version, total)
    return total


async def list_enquiries(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, filters: EnquiryFilters,
                         page: Page, totals: TotalsCache | None = None) -> tuple[list[asyncpg.Record], int | None]:
    """Up to ``limit + 1`` rows of the page and the exact total (None when not asked for)."""
    text, args = page_query(tenant_id, filters, page)
    if filters.status_only:
        rows = await conn.fetch(text, *args)
    else:
        # A substring or date filter's best plan depends on its values (how selective the term is), so the
        # prepared statement must not settle on a generic plan; the connection goes back to the pool as it came.
        await conn.execute("SET plan_cache_mode = force_custom_plan")
        try:
            rows = await conn.fetch(text, *args)
        finally:
            await conn.execute("RESET plan_cache_mode")
    total = None
    if page.include_total:
        if page.after is None and len(rows) <= page.limit and (rows or not page.offset):
            total = page.offset + len(rows)  # this page reaches the end: nothing left to count
        elif filters.status_only:
            statuses = [filters.status] if filters.status else list(STATUSES)
            total = (await sql.get_enquiry_totals(conn, tenant_id=tenant_id, statuses=statuses))["total"]
        else:
            total = await _filtered_total(conn, sql, tenant_id, filters, totals)
    return rows, total
