"""Named SQL: the aiosql-style loader, and that every query the code calls exists."""

import pytest

from voyagent import resources
from voyagent.queries import Queries, QueryError, parse_sql

SAMPLE = """
-- name: get-thing^
-- One thing by id.
SELECT id, name::text FROM things WHERE id = :id AND tenant_id = :tenant_id AND id = :id;

-- name: count-things$
SELECT count(*) FROM things WHERE tenant_id = :tenant_id;

-- name: touch-thing!
UPDATE things SET name = :name WHERE id = :id;
"""


def test_named_parameters_become_positional_and_casts_are_kept():
    queries = Queries(parse_sql(SAMPLE))
    get_thing = queries.get_thing
    assert get_thing.operator == "^"
    assert get_thing.sql == "SELECT id, name::text FROM things WHERE id = $1 AND tenant_id = $2 AND id = $1"
    assert get_thing.params == ("id", "tenant_id")
    assert queries.count_things.operator == "$"
    assert queries.touch_thing.args({"id": 1, "name": "x"}) == ["x", 1]


def test_a_missing_query_or_parameter_fails_fast():
    queries = Queries(parse_sql(SAMPLE))
    with pytest.raises(QueryError):
        queries.no_such_query
    with pytest.raises(QueryError):
        queries.require(["get_thing", "nope"])
    with pytest.raises(QueryError):
        queries.get_thing.args({"id": 1})


def test_every_query_the_package_calls_is_defined_in_sql_files():
    queries = Queries.from_directory(resources.sql_dir())
    used = resources.query_names_used()
    assert used, "the scan found no query use at all"
    queries.require(used)


async def test_queries_run_on_the_real_database(db, queries):
    assert await queries.count_active_sessions(db) >= 0
