"""The compiled contract: request validation maps to the README's 422 vocabulary."""

import decimal

import pytest

from voyagent.contract import (
    Contract,
    ContractError,
    coerce_param,
    json_depth_exceeds,
    nul_errors,
    validate_body,
)

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "1"},
    "paths": {
        "/things/{thing_id}": {
            "post": {
                "operationId": "make_thing",
                "tags": ["things"],
                "x-voyagent-access": "key",
                "x-voyagent-scope": "enquiries:write",
                "parameters": [
                    {"name": "thing_id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 5,
                                                                "default": 2}},
                    {"name": "flag", "in": "query", "schema": {"type": "boolean"}},
                    {"name": "day", "in": "query", "schema": {"type": "string", "format": "date"}},
                    {"name": "kind", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
                ],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": False, "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "x-voyagent-rule": "name"},
                        "email": {"type": "string", "maxLength": 320, "x-voyagent-rule": "email"},
                        "title": {"type": "string", "maxLength": 3},
                        "count": {"type": ["integer", "null"], "maximum": 10},
                        "amount": {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}],
                                   "x-voyagent-rule": "decimal", "x-voyagent-minimum": 0,
                                   "x-voyagent-exclusive-maximum": 1000},
                        "status": {"enum": ["new", "old"]},
                        "tags": {"type": "array", "maxItems": 1, "items": {"type": "string"}},
                        "when": {"type": "string", "format": "date"},
                    }}}}},
                "responses": {"201": {"description": "ok"}},
            }
        }
    },
}


@pytest.fixture(scope="module")
def operation():
    return Contract(DOCUMENT).operations["make_thing"]


def _types(errors):
    return [(e["loc"], e["type"]) for e in errors]


def test_access_rule_and_parameters_are_compiled(operation):
    assert (operation.method, operation.access, operation.scope) == ("POST", "key", "enquiries:write")
    assert [p.name for p in operation.query_params] == ["limit", "flag", "day", "kind"]


def test_body_violations_use_the_contract_vocabulary(operation):
    body = {"title": "long", "count": "3", "status": "gone", "tags": ["a", "b"], "when": "2026-02-30",
            "extra": 1, "amount": "1e5"}
    _, errors = validate_body(operation.body, body)
    assert sorted(_types(errors), key=str) == sorted([
        (["body", "name"], "missing"),
        (["body", "title"], "string_too_long"),
        (["body", "count"], "int_type"),
        (["body", "status"], "literal_error"),
        (["body", "tags"], "too_long"),
        (["body", "when"], "date_from_datetime_parsing"),
        (["body", "extra"], "extra_forbidden"),
        (["body", "amount"], "decimal_parsing"),
    ], key=str)


def test_rules_normalise_values(operation):
    body, errors = validate_body(operation.body, {"name": "  Asha  ", "email": "A@B.COM", "amount": 2.675})
    assert errors == []
    assert body["name"] == "Asha" and body["email"] == "a@b.com"
    assert body["amount"] == decimal.Decimal("2.68")


@pytest.mark.parametrize(("amount", "kind"), [(True, "decimal_type"), (-1, "greater_than_equal"),
                                               ("1000", "less_than"), ("NaN", "decimal_parsing"),
                                               (" 1", "decimal_parsing"), ({"a": 1}, "decimal_type")])
def test_decimal_rule(operation, amount, kind):
    _, errors = validate_body(operation.body, {"name": "x", "amount": amount})
    assert _types(errors) == [(["body", "amount"], kind)]


def test_blank_name_and_bad_email_are_value_errors(operation):
    _, errors = validate_body(operation.body, {"name": "   ", "email": "nope"})
    assert {(tuple(e["loc"]), e["msg"]) for e in errors} == {
        (("body", "name"), "Value error, name_required"), (("body", "email"), "Value error, invalid_email")}


def test_a_non_object_body_is_model_attributes_type(operation):
    _, errors = validate_body(operation.body, [1, 2])
    assert _types(errors) == [(["body"], "model_attributes_type")]


@pytest.mark.parametrize(("name", "raw", "expected"), [
    ("limit", "3", 3), ("limit", " 4 ", 4), ("flag", "Yes", True), ("flag", "off", False),
    ("day", "2026-01-31", "2026-01-31"), ("kind", ["a", "b"], ["a", "b"]),
])
def test_query_values_are_coerced(operation, name, raw, expected):
    param = next(p for p in operation.query_params if p.name == name)
    value, errors = coerce_param(param, raw)
    assert errors == []
    assert str(value) == str(expected)


@pytest.mark.parametrize(("name", "raw", "kind"), [
    ("limit", "x", "int_parsing"), ("limit", "9", "less_than_equal"), ("limit", "0", "greater_than_equal"),
    ("limit", "1" * 40, "int_parsing"), ("flag", "maybe", "bool_parsing"), ("day", "2026-13-01",
                                                                             "date_from_datetime_parsing"),
    ("day", "20260101", "date_from_datetime_parsing"),
])
def test_bad_query_values(operation, name, raw, kind):
    param = next(p for p in operation.query_params if p.name == name)
    _, errors = coerce_param(param, raw)
    assert _types(errors) == [(["query", name], kind)]


def test_nesting_depth_counts_the_top_level_as_one():
    assert not json_depth_exceeds(_nest(64))
    assert json_depth_exceeds(_nest(65))


def _nest(levels):
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


def test_nul_characters_are_found_in_values_and_keys():
    errors = nul_errors({"a": "x\x00", "b": ["ok", "\x00"], "c\x00": 1}, ["body"])
    assert sorted(tuple(e["loc"]) for e in errors) == [("body", "a"), ("body", "b", 1), ("body", "c\x00")]
    assert all(e["msg"] == "Value error, nul_character" for e in errors)


def test_unknown_rules_and_access_values_refuse_to_load():
    broken = {**DOCUMENT, "paths": {"/x": {"get": {"operationId": "x", "x-voyagent-access": "anyone",
                                                   "responses": {}}}}}
    with pytest.raises(ContractError):
        Contract(broken)


def test_nul_errors_stop_at_the_items_a_422_can_hold():
    errors = nul_errors({"x": ["\x00"] * 10_000, "y": "\x00"}, ["body"])
    assert len(errors) == 50
    assert {tuple(e["loc"][:2]) for e in errors} <= {("body", "x"), ("body", "y")}
