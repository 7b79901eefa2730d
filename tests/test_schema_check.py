"""Request schemas run on the linear regex engine and list their violations in bounded work."""

import pytest

from voyagent.contract import Contract, ContractError, coerce_param, validate_body
from voyagent.grammars import MONEY_AMOUNT_PATTERN
from voyagent.schema_check import LINEAR_EQUIVALENTS, SchemaCheck, SchemaError, validator_schema

MONEY = {"type": "object", "additionalProperties": False, "required": ["amount", "currency"],
         "properties": {"amount": {"anyOf": [{"type": "number"},
                                             {"type": "string", "pattern": MONEY_AMOUNT_PATTERN}]},
                        "currency": {"type": "string", "minLength": 3, "maxLength": 3, "pattern": "^[A-Z]{3}$"}}}


def _types(items):
    return [(item["loc"], item["type"]) for item in items]


def test_a_pattern_that_needs_backtracking_refuses_to_load():
    """Proof that the linear engine evaluates patterns: the backtracking one would accept these."""
    for pattern in (r"^(?!a)b$", r"^(a)\1$", r"^(?<=x)y$"):
        with pytest.raises(SchemaError):
            SchemaCheck.compile({"type": "string", "pattern": pattern})


def test_the_money_amount_pattern_runs_as_its_linear_equivalent():
    assert validator_schema(MONEY)["properties"]["amount"]["anyOf"][1]["pattern"] == LINEAR_EQUIVALENTS[
        MONEY_AMOUNT_PATTERN]
    check = SchemaCheck.compile({"type": "object", "properties": {"money": MONEY}})
    assert check.errors({"money": {"amount": "-12.50", "currency": "INR"}}, ["body"]) == []
    assert check.errors({"money": {"amount": 3, "currency": "INR"}}, ["body"]) == []
    items = check.errors({"money": {"amount": "0" * 1_000_000 + "x", "currency": "INR"}}, ["body"])
    assert _types(items) == [(["body", "money", "amount"], "value_error")]


def test_the_published_money_schema_keeps_the_contract_pattern(contract):
    money = contract.document["components"]["schemas"]["Money"]
    assert money["properties"]["amount"]["anyOf"][1]["pattern"] == MONEY_AMOUNT_PATTERN


def test_the_contract_document_loads_with_every_pattern_on_the_linear_engine(contract):
    """Contract() compiles every request schema through SchemaCheck (the fixture would have raised)."""
    assert all(isinstance(p.check, SchemaCheck) for op in contract.operations.values()
               for p in op.path_params + op.query_params)


def test_a_contract_with_a_backtracking_request_pattern_refuses_to_start():
    document = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {"/x": {"get": {
        "operationId": "x", "x-voyagent-access": "public", "responses": {},
        "parameters": [{"name": "q", "in": "query", "schema": {"type": "string", "pattern": "^(?=a)a+$"}}]}}}}
    with pytest.raises(ContractError):
        Contract(document)


def test_a_megabyte_query_value_is_judged_by_the_linear_engine(contract):
    param = next(p for p in contract.operations["get_receivables_aging"].query_params if p.name == "currency")
    value, items = coerce_param(param, "A" * 16_384)
    assert value is None and _types(items) == [(["query", "currency"], "string_pattern_mismatch")]
    assert items[0]["msg"] == "String should match pattern '^[A-Z]{3}$'"


ARRAY = {"type": "object", "additionalProperties": False,
         "properties": {"tags": {"type": "array", "maxItems": 3, "items": {"type": "string", "enum": ["a"]}},
                        "name": {"type": "string"}}}


def test_a_huge_invalid_array_is_pruned_before_errors_are_listed():
    check = SchemaCheck.compile(ARRAY)
    tags = [1] * 500_000
    assert len(check.prune({"tags": tags})["tags"]) == check.cap == 51
    items = check.errors({"tags": tags}, ["body"])
    assert len(items) == 50
    assert items[0]["type"] == "too_long" and items[0]["msg"] == "List should have at most 3 items"
    assert "input" in items[0] and items[1]["loc"] == ["body", "tags", 0]


def test_unknown_keys_beyond_the_cap_are_not_listed_but_known_keys_are_kept():
    check = SchemaCheck.compile(ARRAY)
    body = {f"k{i}": i for i in range(100_000)}
    body["name"] = 7
    pruned = check.prune(body)
    assert len(pruned) == check.cap + 1 and pruned["name"] == 7
    items = check.errors(body, ["body"])
    assert _types(items) == [(["body", "name"], "string_type")] + [
        (["body", f"k{i}"], "extra_forbidden") for i in range(49)]


def test_a_maxitems_above_fifty_still_reports_too_long():
    check = SchemaCheck.compile({"type": "array", "maxItems": 80, "items": {"type": "integer"}})
    assert check.cap == 81
    assert _types(check.errors(list(range(500)), ["body"])) == [(["body"], "too_long")]


@pytest.mark.parametrize(("schema", "value", "type_", "msg"), [
    ({"type": "string", "minLength": 12}, "Zx9", "string_too_short", "String should have at least 12 characters"),
    ({"type": "string", "maxLength": 3}, "Zx9-secret", "string_too_long", "String should have at most 3 characters"),
    ({"type": "integer"}, "Zx9-secret", "int_type", "Input should be a valid integer"),
    ({"enum": ["a", "b"]}, "Zx9-secret", "literal_error", "Input should be 'a' or 'b'"),
    ({"type": "string", "pattern": "^[A-Z]{3}$"}, "Zx9-secret", "string_pattern_mismatch",
     "String should match pattern '^[A-Z]{3}$'"),
    ({"type": "string", "format": "date"}, "Zx9-secret", "date_from_datetime_parsing", "Input should be a valid date"),
    ({"type": "integer", "maximum": 5}, 900913, "less_than_equal", "Input should be less than or equal to 5"),
])
def test_messages_name_the_rule_never_the_value(schema, value, type_, msg):
    items = SchemaCheck.compile({"type": "object", "properties": {"f": schema}}).errors({"f": value}, ["body"])
    assert [(item["type"], item["msg"]) for item in items] == [(type_, msg)]
    assert str(value) not in item_text(items)
    assert items[0]["input"] == value


def item_text(items):
    return " ".join(f"{item['loc']} {item['msg']} {item['type']}" for item in items)


def test_rules_quote_values_only_as_input(contract):
    body, items = validate_body(contract.operations["create_enquiry"].body,
                                {"customer_name": "A", "budget_amount": "x" * 5000})
    assert _types(items) == [(["body", "budget_amount"], "decimal_parsing")]
    assert "x" * 10 not in items[0]["msg"]
