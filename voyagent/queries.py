"""Named SQL loaded from ``sql/*.sql`` (aiosql-style ``-- name: verb-noun<op>``) into asyncpg calls.

Operators after the name: ``^`` one row, ``$`` one value, ``!`` execute, ``*!`` executemany, none = all rows.
Parameters are ``:name`` (``::type`` casts are left alone); the connection is always the first argument,
so the caller owns the transaction.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Iterable

import asyncpg

_NAME_RE = re.compile(r"^--\s*name:\s*([a-z][a-z0-9_-]*)(\^|\$|\*!|!)?\s*$")
_PARAM_RE = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class QueryError(LookupError):
    """A named query is missing, malformed or called with the wrong parameters."""


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    """One named statement, already rewritten to asyncpg's positional parameters."""

    name: str
    operator: str
    sql: str
    params: tuple[str, ...]

    def args(self, values: dict[str, Any]) -> list[Any]:
        try:
            return [values[name] for name in self.params]
        except KeyError as exc:
            raise QueryError(f"query {self.name} needs parameter {exc.args[0]!r}") from None

    async def fetch(self, conn: asyncpg.Connection, **values: Any) -> list[asyncpg.Record]:
        return await conn.fetch(self.sql, *self.args(values))

    async def fetchrow(self, conn: asyncpg.Connection, **values: Any) -> asyncpg.Record | None:
        return await conn.fetchrow(self.sql, *self.args(values))

    async def fetchval(self, conn: asyncpg.Connection, **values: Any) -> Any:
        return await conn.fetchval(self.sql, *self.args(values))

    async def execute(self, conn: asyncpg.Connection, **values: Any) -> str:
        return await conn.execute(self.sql, *self.args(values))

    async def executemany(self, conn: asyncpg.Connection, rows: Iterable[dict[str, Any]]) -> None:
        await conn.executemany(self.sql, [self.args(row) for row in rows])

    async def __call__(self, conn: asyncpg.Connection, **values: Any) -> Any:
        """Run according to the operator of the query's name (straight to asyncpg: every request calls this)."""
        run = getattr(conn, _RUN.get(self.operator, "fetch"))
        try:
            args = [values[name] for name in self.params]
        except KeyError:
            args = self.args(values)  # raises the QueryError naming the missing parameter
        return await run(self.sql, *args)


_RUN = {"^": "fetchrow", "$": "fetchval", "!": "execute"}  # the asyncpg call of an operator (else fetch)


def _rewrite(sql: str) -> tuple[str, tuple[str, ...]]:
    order: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    return _PARAM_RE.sub(replace, sql), tuple(order)


def parse_sql(text: str, source: str = "<string>") -> list[Query]:
    """Split a file into its named queries."""
    queries: list[Query] = []
    name: str | None = None
    operator = ""
    body: list[str] = []

    def flush() -> None:
        if name is None:
            return
        sql = "\n".join(line for line in body if not line.lstrip().startswith("--")).strip().rstrip(";")
        if not sql:
            raise QueryError(f"{source}: query {name} is empty")
        rewritten, params = _rewrite(sql)
        queries.append(Query(name.replace("-", "_"), operator, rewritten, params))

    for line in text.splitlines():
        match = _NAME_RE.match(line.strip())
        if match:
            flush()
            name, operator, body = match.group(1), match.group(2) or "", []
        elif name is not None:
            body.append(line)
    flush()
    return queries


class Queries:
    """Every named query of a directory, as attributes (``queries.get_user``); a missing name fails fast."""

    def __init__(self, queries: Iterable[Query]) -> None:
        self._queries: dict[str, Query] = {}
        for query in queries:
            if query.name in self._queries:
                raise QueryError(f"duplicate query name {query.name}")
            if hasattr(Queries, query.name):
                raise QueryError(f"query name {query.name} is taken by a method of Queries")
            self._queries[query.name] = query
        self.__dict__.update(self._queries)  # found as plain attributes; __getattr__ only sees missing names

    @classmethod
    def from_directory(cls, directory: Path) -> "Queries":
        found: list[Query] = []
        for path in sorted(directory.glob("*.sql")):
            found.extend(parse_sql(path.read_text(encoding="utf-8"), str(path)))
        return cls(found)

    def __getattr__(self, name: str) -> Query:
        try:
            return self._queries[name]
        except KeyError:
            raise QueryError(f"no SQL query named {name!r} in sql/") from None

    def require(self, names: Iterable[str]) -> None:
        """Fail at start-up when any of these names is missing."""
        missing = sorted(set(names) - set(self._queries))
        if missing:
            raise QueryError(f"missing SQL queries: {', '.join(missing)}")

    def names(self) -> list[str]:
        return sorted(self._queries)
