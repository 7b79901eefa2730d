"""Named SQL from ``sql/*.sql``, parsed by aiosql, each query run straight on asyncpg.

aiosql reads the files (``-- name: verb-noun<op>``, the comment lines under it, ``:name`` parameters rewritten
to asyncpg's ``$n`` outside quoted text, ``::type`` casts left alone). Operators: ``^`` one row, ``$`` one
value, ``!`` execute, none = all rows (a list); any other operator fails at start-up. The call itself is ours:
aiosql's generated call costs about three times as much per query and returns plain selects as an async
generator (bench/query_call_bench.py, docs/decisions.md). The connection is always the first argument, so the
caller owns the transaction.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable

import asyncpg
from aiosql.adapters.asyncpg import AsyncPGAdapter
from aiosql.query_loader import QueryLoader
from aiosql.types import SQLOperationType
from aiosql.utils import SQLLoadException, SQLParseException

# The asyncpg method each operation runs.
_METHODS = {
    SQLOperationType.SELECT: "fetch",
    SQLOperationType.SELECT_ONE: "fetchrow",
    SQLOperationType.SELECT_VALUE: "fetchval",
    SQLOperationType.INSERT_UPDATE_DELETE: "execute",
}


class QueryError(LookupError):
    """A named query is missing, malformed or called with the wrong parameters."""


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    """One named statement, already rewritten to asyncpg's positional parameters."""

    name: str
    method: str  # the asyncpg Connection method: fetch, fetchrow, fetchval or execute
    sql: str
    params: tuple[str, ...]

    def args(self, values: dict[str, Any]) -> list[Any]:
        """The positional arguments for ``sql`` (also what a plan test binds to EXPLAIN the same statement)."""
        try:
            return [values[name] for name in self.params]
        except KeyError as exc:
            raise QueryError(f"query {self.name} needs parameter {exc.args[0]!r}") from None

    async def __call__(self, conn: asyncpg.Connection, **values: Any) -> Any:
        """Run on ``conn`` with the named parameters (rows, one row, one value or the status string)."""
        return await getattr(conn, self.method)(self.sql, *self.args(values))


def load_file(path: Path) -> list[Query]:
    """The named queries of one file, as aiosql parses them."""
    adapter = AsyncPGAdapter()
    try:
        data = QueryLoader(adapter, None, attribute=None, mandatory_parameters=False).load_query_data_from_file(path)
    except (SQLLoadException, SQLParseException) as exc:
        raise QueryError(f"{path}: {exc}") from None
    queries = []
    for datum in data:
        method = _METHODS.get(datum.operation_type)
        if method is None:
            raise QueryError(f"{path}: query {datum.query_name} uses an operator voyagent does not run "
                             f"({datum.operation_type.name})")
        statement = datum.sql  # aiosql keeps the closing semicolon
        statement = statement.rstrip().rstrip(";").rstrip()
        queries.append(Query(datum.query_name, method, statement, tuple(adapter.var_sorted[datum.query_name])))
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
        self.__dict__.update(self._queries)  # plain attributes: ``__getattr__`` only runs for a missing name

    @classmethod
    def from_directory(cls, directory: Path) -> "Queries":
        """The queries of every ``*.sql`` file directly in ``directory`` (migrations below it are not queries)."""
        return cls(query for path in sorted(directory.glob("*.sql")) for query in load_file(path))

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
