"""The OpenAPI document compiled once into per-operation access rules and fast request validators."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import re
import uuid
from typing import Any, Callable, Iterable, Mapping

import yaml

from voyagent import jsonio
from voyagent.errors import MAX_VALIDATION_ITEMS, validation_item, value_error
from voyagent.grammars import is_email, is_money_amount
from voyagent.schema_check import SchemaCheck, SchemaError

MAX_JSON_DEPTH = 64
LOCALES = ("en", "hi")
ROLES = ("agency_admin", "ticketing_lead", "accounting_lead", "agent", "viewer")
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_INTEGER_RE = re.compile(r"[+-]?\d{1,19}")  # fullmatch of a bounded repeat: at most 21 steps, any input
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_TWO_PLACES = decimal.Decimal("0.01")


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ContractError(ValueError):
    """The OpenAPI document is invalid; the server refuses to start."""


@dataclasses.dataclass(slots=True)
class Param:
    """One path or query parameter with its coercion and compiled schema."""

    name: str
    location: str
    required: bool
    schema: dict[str, Any]
    check: SchemaCheck
    is_array: bool
    kind: str  # integer | boolean | date | uuid | string | number | array

    @property
    def default(self) -> Any:
        return self.schema.get("default")


@dataclasses.dataclass(slots=True)
class Body:
    """The JSON request body of an operation."""

    required: bool
    schema: dict[str, Any]
    check: SchemaCheck
    rules: list[tuple[str, str, dict[str, Any]]]  # (property, rule, property schema)
    body_rule: str | None


@dataclasses.dataclass(slots=True)
class Operation:
    """One routed operation: identity, access rule and validators."""

    operation_id: str
    method: str
    path: str
    tag: str
    access: str  # public | jwt | key
    scope: str | None
    role: str | None
    buckets: tuple[str, ...]
    idempotent: bool
    path_params: list[Param]
    query_params: list[Param]
    body: Body | None

    @property
    def authenticated(self) -> bool:
        return self.access != "public"

    @property
    def needs_validation(self) -> bool:
        return bool(self.path_params or self.query_params or self.body)


# ---------------------------------------------------------------------------------------------------
# loading


def load_document(path: str) -> dict[str, Any]:
    """Read openapi.yaml; a malformed file is a ContractError."""
    try:
        with open(path, "rb") as handle:
            document = yaml.load(handle, Loader=_YAML_LOADER)
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(f"cannot read OpenAPI document {path}: {exc}") from exc
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3.1"):
        raise ContractError("the OpenAPI document must be an OpenAPI 3.1 object")
    if not isinstance(document.get("paths"), dict):
        raise ContractError("the OpenAPI document has no paths")
    return document


class _Resolver:
    """Inlines local ``$ref``s so every compiled schema is self-contained."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def lookup(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise ContractError(f"only local $refs are supported: {ref}")
        node: Any = self.document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise ContractError(f"unresolvable $ref {ref}")
            node = node[part]
        return node

    def resolve(self, node: Any, depth: int = 0) -> Any:
        if depth > 50:
            raise ContractError("$ref nesting too deep (recursive schema?)")
        if isinstance(node, dict):
            if "$ref" in node:
                target = self.resolve(self.lookup(node["$ref"]), depth + 1)
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return {**target, **self.resolve(rest, depth + 1)} if rest else target
            return {k: self.resolve(v, depth + 1) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(item, depth + 1) for item in node]
        return node


def _compile(schema: dict[str, Any]) -> SchemaCheck:
    try:
        return SchemaCheck.compile(schema)
    except SchemaError as exc:
        raise ContractError(str(exc)) from exc


def _param_kind(schema: Mapping[str, Any]) -> str:
    types = schema.get("type")
    if isinstance(types, list):
        types = next((t for t in types if t != "null"), "string")
    if types == "array":
        return "array"
    if types in ("integer", "boolean", "number"):
        return str(types)
    if schema.get("format") == "date":
        return "date"
    if schema.get("format") == "uuid":
        return "uuid"
    return "string"


def _build_param(raw: dict[str, Any]) -> Param:
    schema = raw.get("schema") or {"type": "string"}
    kind = _param_kind(schema)
    return Param(name=raw["name"], location=raw["in"], required=bool(raw.get("required")),
                 schema=schema, check=_compile(schema), is_array=kind == "array", kind=kind)


def _build_body(raw: dict[str, Any] | None) -> Body | None:
    if not raw:
        return None
    content = raw.get("content") or {}
    media = content.get("application/json")
    if media is None:
        raise ContractError("request bodies must be application/json")
    schema = media.get("schema") or {}
    rules = [(name, prop["x-voyagent-rule"], prop)
             for name, prop in (schema.get("properties") or {}).items()
             if isinstance(prop, dict) and "x-voyagent-rule" in prop]
    for _, rule, _ in rules:
        if rule not in PROPERTY_RULES:
            raise ContractError(f"unknown x-voyagent-rule {rule!r}")
    body_rule = schema.get("x-voyagent-rule")
    if body_rule is not None and body_rule not in BODY_RULES:
        raise ContractError(f"unknown body x-voyagent-rule {body_rule!r}")
    return Body(required=bool(raw.get("required")), schema=schema, check=_compile(schema),
                rules=rules, body_rule=body_rule)


class Contract:
    """The compiled OpenAPI document: operations by id and the document itself for /schema and /docs."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.json_bytes = jsonio.dumps(document)
        resolver = _Resolver(document)
        self.operations: dict[str, Operation] = {}
        for path, item in document["paths"].items():
            item = resolver.resolve(item)
            shared = item.get("parameters", [])
            for method in _METHODS:
                raw = item.get(method)
                if raw is None:
                    continue
                self._add(path, method.upper(), raw, shared)

    def _add(self, path: str, method: str, raw: dict[str, Any], shared: list[dict[str, Any]]) -> None:
        op_id = raw.get("operationId")
        if not op_id or op_id in self.operations:
            raise ContractError(f"{method} {path}: missing or duplicate operationId")
        access = raw.get("x-voyagent-access")
        if access not in ("public", "jwt", "key"):
            raise ContractError(f"{op_id}: x-voyagent-access must be public, jwt or key")
        if access == "key" and not raw.get("x-voyagent-scope"):
            raise ContractError(f"{op_id}: key access needs x-voyagent-scope")
        params = {(p["in"], p["name"]): p for p in shared + raw.get("parameters", [])}
        path_params = [_build_param(p) for (where, _), p in params.items() if where == "path"]
        query_params = [_build_param(p) for (where, _), p in params.items() if where == "query"]
        self.operations[op_id] = Operation(
            operation_id=op_id, method=method, path=path, tag=(raw.get("tags") or ["default"])[0],
            access=access, scope=raw.get("x-voyagent-scope"), role=raw.get("x-voyagent-role"),
            buckets=tuple(raw.get("x-voyagent-buckets") or ()), idempotent=bool(raw.get("x-voyagent-idempotent")),
            path_params=path_params, query_params=query_params, body=_build_body(raw.get("requestBody")))

    @classmethod
    def from_file(cls, path: str) -> "Contract":
        return cls(load_document(path))


# ---------------------------------------------------------------------------------------------------
# validation


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when objects/arrays nest deeper than ``limit`` (the top-level value is level 1)."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children: Iterable[Any] = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def nul_errors(value: Any, loc: list[Any], limit: int = MAX_VALIDATION_ITEMS) -> list[dict[str, Any]]:
    """One value_error item per string (value or key) holding U+0000, at most ``limit`` of them."""
    items: list[dict[str, Any]] = []
    stack: list[tuple[Any, list[Any]]] = [(value, loc)]
    while stack and len(items) < limit:
        node, where = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                items.append(value_error(where, "nul_character"))
            continue
        pairs: Iterable[tuple[Any, Any]] = (
            node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ())
        nested = []
        for key, child in pairs:
            if len(items) >= limit:
                break
            if isinstance(key, str) and "\x00" in key:
                items.append(value_error(where + [key], "nul_character"))
            if isinstance(child, str):
                if "\x00" in child:
                    items.append(value_error(where + [key], "nul_character"))
            elif isinstance(child, (dict, list)):
                nested.append((child, where + [key]))
        stack.extend(reversed(nested))
    return items[:limit]


def coerce_param(param: Param, raw: str | list[str]) -> tuple[Any, list[dict[str, Any]]]:
    """Turn a query/path string into its typed value, or a parsing error item."""
    loc = [param.location, param.name]
    if param.is_array:
        values = raw if isinstance(raw, list) else [raw]
        return values, param.check.errors(values, loc)
    assert isinstance(raw, str)
    value: Any = raw
    if param.kind == "integer":
        text = raw.strip()
        if not _INTEGER_RE.fullmatch(text):
            return None, [validation_item(loc, "int_parsing", "Input should be a valid integer", input=raw)]
        value = int(text)
    elif param.kind == "number":
        try:
            value = float(raw)
        except ValueError:
            return None, [validation_item(loc, "decimal_parsing", "Input should be a valid number", input=raw)]
    elif param.kind == "boolean":
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            value = True
        elif lowered in _FALSE:
            value = False
        else:
            return None, [validation_item(loc, "bool_parsing", "Input should be a valid boolean", input=raw)]
    errors = param.check.errors(value, loc)
    if errors:
        return None, errors
    if param.kind == "date":
        try:
            value = dt.date.fromisoformat(raw) if len(raw) == 10 else _bad_date()
        except ValueError:
            return None, [validation_item(loc, "date_from_datetime_parsing", "Input should be a valid date",
                                          input=raw)]
    elif param.kind == "uuid":
        value = uuid.UUID(raw)
    return value, []


def _bad_date() -> dt.date:
    raise ValueError("not YYYY-MM-DD")


# --- semantic rules (x-voyagent-rule) ----------------------------------------------------------------

RuleResult = tuple[Any, list[dict[str, Any]]]


def _rule_email(name: str, value: Any, schema: dict[str, Any]) -> RuleResult:
    if not isinstance(value, str) or not is_email(value):
        return value, [value_error(["body", name], "invalid_email", input=value)]
    return value.lower(), []


def _rule_new_password(name: str, value: Any, schema: dict[str, Any]) -> RuleResult:
    if not (any(c.isalpha() for c in value) and any(c.isdigit() for c in value)):
        return value, [value_error(["body", name], "password_must_contain_letter_and_digit")]
    return value, []


def _rule_name(name: str, value: Any, schema: dict[str, Any]) -> RuleResult:
    trimmed = value.strip()
    if not trimmed:
        return value, [value_error(["body", name], f"{name}_required", input=value)]
    if len(trimmed) > 120:
        return value, [validation_item(["body", name], "string_too_long",
                                       "String should have at most 120 characters", input=value)]
    return trimmed, []


def _rule_role(name: str, value: Any, schema: dict[str, Any]) -> RuleResult:
    if value not in ROLES:
        return value, [value_error(["body", name], "invalid_role", input=value)]
    return value, []


def parse_decimal(value: Any) -> decimal.Decimal | None:
    """A JSON number or Money-pattern string as a Decimal, or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        text = repr(value) if isinstance(value, float) else str(value)
    elif isinstance(value, str) and is_money_amount(value):
        text = value
    else:
        return None
    try:
        result = decimal.Decimal(text)
    except decimal.InvalidOperation:
        return None
    return result if result.is_finite() else None


def _rule_decimal(name: str, value: Any, schema: dict[str, Any]) -> RuleResult:
    if value is None:
        return None, []
    loc = ["body", name]
    if isinstance(value, (bool, list, dict)):
        return value, [validation_item(loc, "decimal_type", "Decimal input should be an integer, float or string",
                                       input=value)]
    number = parse_decimal(value)
    if number is None:
        return value, [validation_item(loc, "decimal_parsing", "Input should be a valid decimal", input=value)]
    low = schema.get("x-voyagent-minimum")
    if low is not None and number < decimal.Decimal(str(low)):
        return value, [validation_item(loc, "greater_than_equal", f"Input should be greater than or equal to {low}",
                                       input=value)]
    high = schema.get("x-voyagent-exclusive-maximum")
    if high is not None and number >= decimal.Decimal(str(high)):
        return value, [validation_item(loc, "less_than", f"Input should be less than {high}", input=value)]
    return number.quantize(_TWO_PLACES, rounding=decimal.ROUND_HALF_UP), []


def _rule_locale(name: str, value: Any, schema: dict[str, Any]) -> RuleResult:
    if value not in LOCALES:
        return value, [value_error(["body", name], "invalid_locale", input=value)]
    return value, []


def _rule_sign_in_totp_form(body: dict[str, Any]) -> list[dict[str, Any]]:
    token_form = "totp_token" in body
    credential_form = "email" in body or "password" in body
    if token_form == credential_form or (credential_form and not ("email" in body and "password" in body)):
        return [value_error(["body"], "credentials_required")]
    if "totp_code" not in body:
        return [validation_item(["body", "totp_code"], "missing", "Field required")]
    return []


PROPERTY_RULES: dict[str, Callable[[str, Any, dict[str, Any]], RuleResult]] = {
    "email": _rule_email,
    "new_password": _rule_new_password,
    "name": _rule_name,
    "role": _rule_role,
    "decimal": _rule_decimal,
    "locale": _rule_locale,
}
# Rules that own every check of their value (the schema only documents it): schema errors there are dropped.
SELF_VALIDATING_RULES = {"decimal"}
BODY_RULES: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
    "sign_in_totp_form": _rule_sign_in_totp_form,
}


def validate_body(body_spec: Body, body: Any) -> tuple[Any, list[dict[str, Any]]]:
    """Schema validation, then the semantic rules of fields that passed it; returns the normalised body."""
    if not isinstance(body, dict):
        return None, [validation_item(["body"], "model_attributes_type", "Input should be a valid dictionary",
                                      input=body)]
    errors = body_spec.check.errors(body, ["body"])
    owned = {name for name, rule, _ in body_spec.rules if rule in SELF_VALIDATING_RULES}
    if owned:
        errors = [e for e in errors if not (len(e["loc"]) > 1 and e["loc"][1] in owned)]
    failed = {e["loc"][1] for e in errors if len(e["loc"]) > 1}
    if body_spec.rules:
        body = dict(body)
        for name, rule, prop in body_spec.rules:
            if name in body and name not in failed and body[name] is not None:
                body[name], rule_errors = PROPERTY_RULES[rule](name, body[name], prop)
                errors.extend(rule_errors)
    if body_spec.body_rule and not errors:
        errors.extend(BODY_RULES[body_spec.body_rule](body))
    return body, errors
