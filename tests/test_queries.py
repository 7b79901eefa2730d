"""Named SQL: aiosql's parsing as voyagent loads it, and that every query the code calls exists."""

import pytest

from voyagent import resources
from voyagent.queries import Queries, QueryError

SAMPLE = """
-- name: get-thing^
-- One thing by id.
SELECT id, name::text FROM things WHERE id = :id AND tenant_id = :tenant_id AND id = :id;

-- name: count-things$
SELECT count(*) FROM things WHERE tenant_id = :tenant_id AND name <> ':not_a_parameter';

-- name: touch-thing!
UPDATE things SET name = :name WHERE id = :id;

-- name: list-things
SELECT id FROM things WHERE tenant_id = :tenant_id ORDER BY id;
"""


@pytest.fixture
def sample(tmp_path):
    (tmp_path / "things.sql").write_text(SAMPLE)
    (tmp_path / "migrations").mkdir()  # files below the directory are migrations, not named queries
    (tmp_path / "migrations" / "0001_things.sql").write_text("CREATE TABLE things (id int);")
    return Queries.from_directory(tmp_path)


def test_named_parameters_become_positional_and_casts_are_kept(sample):
    get_thing = sample.get_thing
    assert get_thing.method == "fetchrow"
    assert get_thing.sql == "SELECT id, name::text FROM things WHERE id = $1 AND tenant_id = $2 AND id = $1"
    assert get_thing.params == ("id", "tenant_id")
    assert sample.count_things.method == "fetchval"
    assert sample.count_things.params == ("tenant_id",)  # text in quotes is not a parameter
    assert sample.touch_thing.method == "execute" and sample.touch_thing.params == ("name", "id")
    assert sample.list_things.method == "fetch"
    assert sample.names() == ["count_things", "get_thing", "list_things", "touch_thing"]


def test_a_missing_query_fails_fast(sample):
    with pytest.raises(QueryError):
        sample.no_such_query
    with pytest.raises(QueryError):
        sample.require(["get_thing", "nope"])


def test_an_operator_voyagent_does_not_run_or_a_duplicate_name_fails_at_load(tmp_path):
    (tmp_path / "a.sql").write_text("-- name: add-things*!\nINSERT INTO things (id) VALUES (:id);\n")
    with pytest.raises(QueryError, match="add_things"):
        Queries.from_directory(tmp_path)
    (tmp_path / "a.sql").write_text("-- name: get-thing^\nSELECT 1;\n")
    (tmp_path / "b.sql").write_text("-- name: get-thing^\nSELECT 2;\n")
    with pytest.raises(QueryError, match="duplicate"):
        Queries.from_directory(tmp_path)


async def test_each_operator_runs_on_the_real_database_and_a_missing_parameter_fails_before_it(sample, db):
    await db.execute("CREATE TEMP TABLE things (id int, tenant_id int, name text)")
    await db.execute("INSERT INTO things VALUES (1, 7, 'a'), (2, 7, 'b'), (3, 8, 'c')")
    assert await sample.touch_thing(db, id=2, name="x") == "UPDATE 1"
    row = await sample.get_thing(db, id=2, tenant_id=7)
    assert (row["id"], row["name"]) == (2, "x")
    assert await sample.count_things(db, tenant_id=7) == 2
    assert [r["id"] for r in await sample.list_things(db, tenant_id=7)] == [1, 2]
    with pytest.raises(QueryError, match="tenant_id"):
        await sample.get_thing(db, id=1)


def test_every_query_the_package_calls_is_defined_in_sql_files():
    queries = Queries.from_directory(resources.sql_dir())
    used = resources.query_names_used()
    assert used, "the scan found no query use at all"
    queries.require(used)


async def test_queries_run_on_the_real_database(db, queries):
    assert await queries.count_active_sessions(db) >= 0
