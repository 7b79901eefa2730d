"""A request schema compiled for the linear regex engine, its violations turned into 422 items in bounded time.

Two guarantees (README "Request validation" and "Error bodies"):
* every ``pattern`` runs on jsonschema-rs's ``regex``-crate engine (finite automata, linear time); a pattern that
  would need the backtracking engine (lookaround, backreference) refuses to load unless a linear equivalent of
  it is registered here;
* the work of listing violations is bounded by the 50 items a 422 may hold, not by the size of the body:
  jsonschema-rs collects every error eagerly, so it only ever sees a pruned copy of an invalid instance.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

import jsonschema_rs

from voyagent.errors import MAX_VALIDATION_ITEMS, validation_item, value_error
from voyagent.grammars import MONEY_AMOUNT_LINEAR_PATTERN, MONEY_AMOUNT_PATTERN

# Contract patterns that need a backtracking engine → the same language written for the linear engine.
LINEAR_EQUIVALENTS = {MONEY_AMOUNT_PATTERN: MONEY_AMOUNT_LINEAR_PATTERN}
_CONTRACT_PATTERNS = {linear: original for original, linear in LINEAR_EQUIVALENTS.items()}
_ANNOTATIONS = ("example", "examples", "description", "title", "deprecated", "readOnly", "writeOnly")
_VALUES = ("const", "enum", "default")  # keywords whose value is data, not a schema

_TYPES = {"object": ("model_attributes_type", "Input should be a valid dictionary"),
          "string": ("string_type", "Input should be a valid string"),
          "integer": ("int_type", "Input should be a valid integer"),
          "boolean": ("bool_type", "Input should be a valid boolean"),
          "array": ("list_type", "Input should be a valid list"),
          "number": ("decimal_type", "Input should be a valid number")}
_LIMITS = {"minLength": ("string_too_short", "String should have at least {} characters"),
           "maxLength": ("string_too_long", "String should have at most {} characters"),
           "minItems": ("too_short", "List should have at least {} items"),
           "maxItems": ("too_long", "List should have at most {} items"),
           "minimum": ("greater_than_equal", "Input should be greater than or equal to {}"),
           "exclusiveMinimum": ("greater_than", "Input should be greater than {}"),
           "maximum": ("less_than_equal", "Input should be less than or equal to {}"),
           "exclusiveMaximum": ("less_than", "Input should be less than {}")}
_FORMATS = {"date": ("date_from_datetime_parsing", "Input should be a valid date"),
            "uuid": ("uuid_parsing", "Input should be a valid UUID"),
            "date-time": ("datetime_parsing", "Input should be a valid datetime")}


class SchemaError(ValueError):
    """The schema cannot be compiled for request validation."""


def validator_schema(node: Any, is_property_map: bool = False) -> Any:
    """The schema as the validator gets it: no vendor extensions or annotations (property names that happen to
    match are kept), and backtracking-only patterns swapped for their linear equivalents."""
    if isinstance(node, dict):
        if is_property_map:
            return {k: validator_schema(v) for k, v in node.items()}
        cleaned = {}
        for key, value in node.items():
            if key.startswith("x-") or key in _ANNOTATIONS:
                continue
            if key in _VALUES:
                cleaned[key] = value
            elif key == "pattern" and isinstance(value, str):
                cleaned[key] = LINEAR_EQUIVALENTS.get(value, value)
            else:
                cleaned[key] = validator_schema(value, key in ("properties", "patternProperties", "$defs"))
        if cleaned.get("additionalProperties") is False and "properties" not in cleaned:
            # jsonschema-rs reports a key of an object that allows none (POST /chat/sessions: only {}) as a
            # pathless ``falseSchema``; with an empty ``properties`` it names the keys (``extra_forbidden``).
            cleaned["properties"] = {}
        return cleaned
    if isinstance(node, list):
        return [validator_schema(item) for item in node]
    return node


def _property_names(node: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                names.update(value)
                for child in value.values():
                    names |= _property_names(child)
            elif key not in _VALUES:
                names |= _property_names(value)
    elif isinstance(node, list):
        for item in node:
            names |= _property_names(item)
    return names


def _max_items(node: Any) -> int:
    if isinstance(node, dict):
        own = node.get("maxItems") if isinstance(node.get("maxItems"), int) else 0
        return max([own, *(_max_items(v) for k, v in node.items() if k not in _VALUES)])
    if isinstance(node, list):
        return max((_max_items(item) for item in node), default=0)
    return 0


@dataclasses.dataclass(frozen=True, slots=True)
class SchemaCheck:
    """One compiled request schema: ``errors(instance, loc)`` lists at most ``limit`` violations."""

    validator: Any
    known_keys: frozenset[str]
    cap: int  # arrays and unknown keys kept when listing violations: enough for 50 items and every maxItems

    @classmethod
    def compile(cls, schema: dict[str, Any]) -> "SchemaCheck":
        cleaned = validator_schema(schema)
        try:
            validator = jsonschema_rs.validator_for(cleaned, validate_formats=True, mask="***",
                                                    pattern_options=jsonschema_rs.RegexOptions())
        except Exception as exc:  # jsonschema_rs raises ValidationError/ValueError for bad schemas
            raise SchemaError(f"invalid schema (patterns must suit the linear regex engine) {schema!r}: "
                              f"{exc}") from exc
        return cls(validator=validator, known_keys=frozenset(_property_names(cleaned)),
                   cap=max(MAX_VALIDATION_ITEMS, _max_items(cleaned)) + 1)

    def errors(self, instance: Any, loc: list[Any], limit: int = MAX_VALIDATION_ITEMS) -> list[dict[str, Any]]:
        """Map violations to items of the contract's 422 list shape (none when the instance is valid)."""
        if self.validator.is_valid(instance):
            return []
        items = _items(self.validator.iter_errors(self.prune(instance)), loc, limit)
        if not items:  # only a violation pruning hid (none of our schemas has one): the full list is short then
            items = _items(self.validator.iter_errors(instance), loc, limit)
        return items

    def prune(self, value: Any) -> Any:
        """A copy keeping every known key and the first ``cap`` unknown keys and array items: each violation it
        has is one of ``value``, and it keeps enough of them to fill a 422."""
        if isinstance(value, list):
            return [self.prune(item) for item in value[:self.cap]]
        if not isinstance(value, dict):
            return value
        kept: dict[str, Any] = {}
        unknown = 0
        for key, child in value.items():
            if key in self.known_keys:
                kept[key] = self.prune(child)
            elif unknown < self.cap:
                unknown += 1
                kept[key] = self.prune(child)
            else:
                break
        for key in self.known_keys:  # known keys after the cut
            if key in value and key not in kept:
                kept[key] = self.prune(value[key])
        return kept


def _items(errors: Iterable[Any], loc: list[Any], limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for error in errors:
        items.extend(_error_items(error, loc))
        if len(items) >= limit:
            return items[:limit]
    return items


def _error_items(error: Any, loc: list[Any]) -> list[dict[str, Any]]:
    name = error.kind.name
    where = loc + list(error.instance_path)
    details = error.kind.as_dict()
    if name == "required":
        return [validation_item(where + [details.get("property")], "missing", "Field required")]
    if name == "additionalProperties":
        return [validation_item(where + [key], "extra_forbidden", "Extra inputs are not permitted")
                for key in details.get("unexpected", [])]
    if name == "type":
        types = details.get("types") or []
        first = next((t for t in ([types] if isinstance(types, str) else types) if t != "null"), None)
        type_, msg = _TYPES.get(first, ("value_error", "Value error, invalid_type"))
    elif name in _LIMITS:
        type_, template = _LIMITS[name]
        msg = template.format(details.get("limit"))
    elif name == "pattern":
        pattern = details.get("pattern", "")
        type_ = "string_pattern_mismatch"
        msg = f"String should match pattern '{_CONTRACT_PATTERNS.get(pattern, pattern)}'"
    elif name in ("enum", "const"):
        options = details.get("options", [details.get("expected_value")])
        type_, msg = "literal_error", f"Input should be {_one_of(options)}"
    elif name == "format":
        type_, msg = _FORMATS.get(details.get("format"), ("value_error", "Value error, invalid_format"))
    else:  # anyOf, oneOf, not, …: no field of ours reaches these (decimal rules own their anyOf)
        return [value_error(where, "invalid_value", input=error.instance)]
    return [validation_item(where, type_, msg, input=error.instance)]


def _one_of(options: list[Any]) -> str:
    shown = [f"'{o}'" if isinstance(o, str) else repr(o) for o in options]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
