"""Package data: openapi.yaml, schema.sql and sql/ ship inside the package (symlinks in the source tree)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

_PACKAGE = Path(str(resources.files("voyagent")))


def openapi_path() -> Path:
    return _PACKAGE / "openapi.yaml"


def schema_path() -> Path:
    return _PACKAGE / "schema.sql"


def sql_dir() -> Path:
    return _PACKAGE / "sql"


def migrations_dir() -> Path:
    return _PACKAGE / "sql" / "migrations"


_QUERY_USE_RE = re.compile(r"(?:\bsql|\[QUERIES\])\.([a-z][a-z0-9_]*)\b")


def query_names_used() -> set[str]:
    """Names of the SQL queries the package's code calls (``sql.<name>`` or ``app[QUERIES].<name>``), checked at start-up."""
    names: set[str] = set()
    for path in _PACKAGE.rglob("*.py"):
        names.update(_QUERY_USE_RE.findall(path.read_text(encoding="utf-8")))
    return names
