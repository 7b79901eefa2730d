"""Paginated lists (README, Pagination): the one piece of code behind every list endpoint.

A list declares itself once as a ``Listing``: its base ``SELECT`` (plain text in ``sql/lists/<name>.sql``: the
columns of a page and the joins that produce them), the table and timestamp that order it (``<time> DESC,
id DESC``, served by a ``(tenant_id, <time> DESC, id DESC)`` index) and its optional filters (``Filter``: a
pypika condition on one placeholder). This module owns everything else:

* a first page or a cursor page: ``<base> WHERE tenant AND filters [AND (time, id) < (cursor)] ORDER BY …
  LIMIT limit + 1`` — one index range scan whatever the depth;
* an offset page, as a deferred join: ``<base> WHERE id = ANY(ARRAY(SELECT id … ORDER BY … LIMIT limit + 1
  OFFSET n)) ORDER BY …``. The skipped rows are counted on an index-only scan of the keyset index; only the
  ``limit + 1`` rows kept are read from the table, by primary key. (``= ANY(ARRAY(…))`` rather than a join: a
  generic plan cannot know the LIMIT, and would hash-join the kept ids against a scan of the whole table;
  the lookup of the array by primary key is the plan either way);
* the exact total: none when the page itself shows where the list ends, else the list's own ``total`` hook
  (a counter table) or ``count(*)`` under the same ``WHERE``;
* planner settings: a filter whose best plan depends on its value (a substring's selectivity) runs with
  ``SET LOCAL plan_cache_mode = force_custom_plan`` inside the read transaction ``Listing.reader`` opens for
  it, so the transaction ends the setting and a pooled connection never carries it. Pages without such a
  filter read on a plain pooled connection (no BEGIN/COMMIT round trips).

Statement text depends only on the shape (which filters are set; first, cursor or offset page), never on
values: it is built once per shape, and asyncpg prepares it once per connection.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from typing import Any, AsyncContextManager, Awaitable, Callable, Mapping, Sequence

import asyncpg
from pypika import Order, Parameter, PostgreSQLQuery, Table
from pypika import functions as fn
from pypika.terms import Criterion, Tuple

from voyagent import resources
from voyagent.db import Database
from voyagent.ids import parse_uuid
from voyagent.pagination import CursorCodec, Page, paginated

INT8_MAX = 2**63 - 1  # the largest OFFSET PostgreSQL takes; a larger one (up to 19 digits) is echoed as sent
_DAY_START = dt.time(0, 0, tzinfo=dt.timezone.utc)
_DAY_END = dt.time(23, 59, 59, 999_999, tzinfo=dt.timezone.utc)
# Rendered unquoted and qualified (e.tenant_id), as a reader of sql/lists/ would write it.
_UNQUOTED = {"quote_char": None, "alias_quote_char": None}
_SQL = {**_UNQUOTED, "with_namespace": True}

Count = Callable[[], Awaitable[int]]


def day_start(day: dt.date) -> dt.datetime:
    """The first instant of a UTC day (a ``from`` date filter)."""
    return dt.datetime.combine(day, _DAY_START)


def day_end(day: dt.date) -> dt.datetime:
    """The last instant of a UTC day, 23:59:59.999999Z (a ``to`` date filter; no overflow on 9999-12-31)."""
    return dt.datetime.combine(day, _DAY_END)


def _same(value: Any) -> Any:
    return value


def select_text(name: str) -> str:
    """The base ``SELECT`` of ``sql/lists/<name>.sql``, its comment lines dropped."""
    text = (resources.sql_dir() / "lists" / f"{name}.sql").read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("--"))


@dataclasses.dataclass(frozen=True, slots=True)
class Filter:
    """One optional condition of a list.

    ``condition`` builds it on its placeholder; ``param`` turns the request's value into the parameter (a
    substring into its ``ILIKE`` pattern, a day into an instant). ``custom_plan``: the best plan depends on
    the value, so a statement with this filter is planned for its values every time.
    """

    name: str
    condition: Callable[[Parameter], Criterion]
    param: Callable[[Any], Any] = _same
    custom_plan: bool = False


@dataclasses.dataclass(eq=False)
class Listing:
    """One paginated list: ``name`` is its cursor scope and its base ``SELECT`` in ``sql/lists/<name>.sql``."""

    name: str
    table: Table  # the aliased table the base SELECT reads rows from, as it is named there
    time_column: str  # ordered by (time_column DESC, id DESC)
    filters: Sequence[Filter] = ()
    cursor_id: Callable[[str], Any] = parse_uuid  # the id column's type (a cursor holds its text)
    base: str = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.base = select_text(self.name)
        self._filters = {f.name: f for f in self.filters}
        self._time = self.table.field(self.time_column)
        self._order = f"{self._time.get_sql(**_SQL)} DESC, {self.table.id.get_sql(**_SQL)} DESC"
        self._statements: dict[tuple, str] = {}

    def paging(self, codec: CursorCodec, query: Mapping[str, Any], tenant_id: Any,
               fingerprint: Mapping[str, Any]) -> Paging:
        """The request's paging, its cursor read (``after`` is already ``(timestamp, id of this list's type)``)."""
        page = codec.page(query, self.name, tenant_id, fingerprint, parse_id=self.cursor_id)
        return Paging(self, codec, tenant_id, fingerprint, page)

    # --- statements --------------------------------------------------------------------------------------

    def _bind(self, tenant_id: Any, values: Mapping[str, Any]) -> tuple[tuple[str, ...], list[Any]]:
        """The filters in effect (the statement's shape, in declaration order) and the parameters, tenant first."""
        if values.keys() - self._filters.keys():
            raise KeyError(f"list {self.name} has no filter {sorted(values.keys() - self._filters.keys())}")
        shape: list[str] = []
        args: list[Any] = [tenant_id]
        for item in self.filters:
            value = values.get(item.name)
            if value is not None:
                shape.append(item.name)
                args.append(item.param(value))
        return tuple(shape), args

    def _where(self, shape: tuple[str, ...]) -> Criterion:
        """``tenant_id = $1`` and one condition per filter of the shape, on ``$2``, ``$3``, …"""
        conditions = [self.table.tenant_id == Parameter("$1")]
        conditions += [self._filters[name].condition(Parameter(f"${n}")) for n, name in enumerate(shape, start=2)]
        return Criterion.all(conditions)

    def _build(self, shape: tuple[str, ...], mode: str, base: str) -> str:
        """The text of one shape: ``count``, ``all`` (unpaged), ``first``, ``after`` (a cursor) or ``offset``."""
        where = self._where(shape)
        if mode == "count":
            return PostgreSQLQuery.from_(self.table).select(fn.Count("*")).where(where).get_sql(**_UNQUOTED)
        n = len(shape) + 2  # the next placeholder after the tenant's and the filters'
        if mode == "offset":  # deferred join: skip on the keyset index, read only the rows kept
            ids = (PostgreSQLQuery.from_(self.table).select(self.table.id).where(where)
                   .orderby(self._time, self.table.id, order=Order.desc)
                   .limit(Parameter(f"${n}")).offset(Parameter(f"${n + 1}")).get_sql(**_UNQUOTED))
            kept = f"{self.table.id.get_sql(**_SQL)} = ANY(ARRAY({ids}))"
            return f"{base}\nWHERE {kept}\nORDER BY {self._order}"
        if mode == "after":
            where &= Tuple(self._time, self.table.id) < Tuple(Parameter(f"${n}"), Parameter(f"${n + 1}"))
            n += 2
        limit = "" if mode == "all" else f"\nLIMIT ${n}"
        return f"{base}\nWHERE {where.get_sql(**_SQL)}\nORDER BY {self._order}{limit}"

    def _statement(self, shape: tuple[str, ...], mode: str, base: str | None = None) -> str:
        key = (shape, mode, base)
        text = self._statements.get(key)
        if text is None:
            text = self._statements[key] = self._build(shape, mode, self.base if base is None else base)
        return text

    def page_sql(self, tenant_id: Any, values: Mapping[str, Any], page: Page) -> tuple[str, list[Any]]:
        """``limit + 1`` rows after the cursor, at the offset or from the top, newest first: (SQL, parameters)."""
        shape, args = self._bind(tenant_id, values)
        if page.after is not None:
            mode = "after"
            args += page.after
        else:
            mode = "offset" if page.offset > 0 else "first"
        args.append(page.limit + 1)
        if mode == "offset":
            args.append(min(page.offset, INT8_MAX))  # past 2^63 - 1 rows every page is empty anyway
        return self._statement(shape, mode), args

    def count_sql(self, tenant_id: Any, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """``count(*)`` of the rows matching the filters, paging ignored: (SQL, parameters)."""
        shape, args = self._bind(tenant_id, values)
        return self._statement(shape, "count"), args

    def all_sql(self, tenant_id: Any, values: Mapping[str, Any], base: str) -> tuple[str, list[Any]]:
        """Every matching row, in list order, as another ``SELECT`` of the same table (an export's) reads them:
        (SQL, parameters)."""
        shape, args = self._bind(tenant_id, values)
        return self._statement(shape, "all", base), args

    def custom_plan(self, values: Mapping[str, Any]) -> bool:
        """True when a filter in effect wants plans made for its values."""
        return any(value is not None and self._filters[name].custom_plan for name, value in values.items())

    # --- running them ------------------------------------------------------------------------------------

    def reader(self, db: Database, values: Mapping[str, Any]) -> AsyncContextManager[asyncpg.Connection]:
        """The connection a handler reads a page on: inside a read-only transaction when a filter needs a planner
        setting (``SET LOCAL`` ends with it; the page and its total then share one snapshot), else a plain pooled
        connection, so the common pages pay no BEGIN/COMMIT round trips (measured: ~0.7x the rps under load)."""
        return db.read_transaction() if self.custom_plan(values) else db.connection()

    async def plan_for_values(self, conn: asyncpg.Connection, values: Mapping[str, Any]) -> None:
        """``SET LOCAL plan_cache_mode = force_custom_plan`` when a filter needs it: a prepared statement must
        not settle on a generic plan whose cost ignores how selective the value is. Local to the caller's
        transaction, so the pooled connection goes back as it came."""
        if self.custom_plan(values):
            if not conn.is_in_transaction():
                raise RuntimeError(f"list {self.name}: a filtered page runs inside the caller's transaction")
            await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")

    async def count(self, conn: asyncpg.Connection, tenant_id: Any, values: Mapping[str, Any]) -> int:
        """``count(*)`` of the matching rows."""
        text, args = self.count_sql(tenant_id, values)
        return int(await conn.fetchval(text, *args))

    async def fetch(self, conn: asyncpg.Connection, tenant_id: Any, values: Mapping[str, Any], page: Page, *,
                    total: Callable[[Count], Awaitable[int]] | None = None) -> tuple[list[asyncpg.Record], int | None]:
        """Up to ``limit + 1`` rows of the page and the exact total (None when not asked for).

        ``total`` answers from a counter when it can; it gets the ``count(*)`` to fall back on. ``conn`` comes
        from ``reader``: a filter that needs a planner setting needs the caller's transaction.
        """
        await self.plan_for_values(conn, values)
        text, args = self.page_sql(tenant_id, values, page)
        rows = await conn.fetch(text, *args)
        if not page.include_total:
            return rows, None
        if page.after is None and len(rows) <= page.limit and (rows or not page.offset):
            return rows, page.offset + len(rows)  # this page reaches the end: nothing left to count
        count = functools.partial(self.count, conn, tenant_id, values)
        return rows, await (total(count) if total is not None else count())


@dataclasses.dataclass(frozen=True, slots=True)
class Paging:
    """One request's page, bound to what its cursors are signed for: the list, the tenant, the filter values."""

    listing: Listing
    codec: CursorCodec
    tenant_id: Any
    fingerprint: Mapping[str, Any]
    page: Page

    def envelope(self, rows: Sequence[Any], total: int | None, item: Callable[[Any], Any],
                 items_key: str = "items") -> dict:
        """The response body: the items of the first ``limit`` rows and the cursor after them."""
        next_cursor = self.codec.next_cursor(rows, self.page, self.listing.name, self.tenant_id, self.fingerprint,
                                             time_key=self.listing.time_column)
        return paginated(items_key, [item(row) for row in rows[:self.page.limit]], total, self.page, next_cursor)

