"""Static checks of ``openapi.yaml`` (no server, no database).

The document is the single source of truth of the API: the server compiles its request validators and access
rules from it and renders ``/docs`` and ``/schema`` from it. These tests pin it to the product contract:
a valid OpenAPI 3.1 document, exactly the 49 endpoints of ``endpoints.md``, the access rules and scopes of
``auth.md``, the shared error responses, closed success schemas and the Money JSON Schema of ``data-model.md``.

When the specification folder is available (``VOYAGENT_SPEC_DIR``, or ``../shared/spec`` next to the
repository), the Money schema and the scope names are also compared with the Markdown files themselves.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

OPENAPI_PATH = Path(__file__).resolve().parents[1] / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

TAGS = {
    "approvals": 3, "audit": 2, "auth": 22, "chat": 6, "enquiries": 5, "health": 3, "internal": 1,
    "reports": 4, "schemas": 1, "tenant-settings": 2,
}

# (method, path) -> (tag, access, scope, role); from endpoints.md (access lines) and auth.md (scope table).
ADMIN = "agency_admin"
EXPECTED: dict[tuple[str, str], tuple[str, str, str | None, str | None]] = {
    ("get", "/approvals"): ("approvals", "key", "approvals:read", None),
    ("get", "/approvals/{approval_id}"): ("approvals", "key", "approvals:read", None),
    ("post", "/approvals/{approval_id}/resolve"): ("approvals", "key", "approvals:write", None),
    ("get", "/audit"): ("audit", "key", "audit:read", ADMIN),
    ("get", "/audit/export.csv"): ("audit", "key", "audit:read", ADMIN),
    ("post", "/auth/accept-invite"): ("auth", "public", None, None),
    ("get", "/auth/api-keys"): ("auth", "jwt", None, ADMIN),
    ("post", "/auth/api-keys"): ("auth", "jwt", None, ADMIN),
    ("post", "/auth/api-keys/{key_id}/revoke"): ("auth", "jwt", None, ADMIN),
    ("get", "/auth/invites"): ("auth", "jwt", None, ADMIN),
    ("post", "/auth/invites"): ("auth", "jwt", None, ADMIN),
    ("post", "/auth/invites/{invite_id}/revoke"): ("auth", "jwt", None, ADMIN),
    ("get", "/auth/invites/lookup"): ("auth", "public", None, None),
    ("get", "/auth/me"): ("auth", "jwt", None, None),
    ("patch", "/auth/profile"): ("auth", "jwt", None, None),
    ("post", "/auth/refresh"): ("auth", "public", None, None),
    ("post", "/auth/request-password-reset"): ("auth", "public", None, None),
    ("post", "/auth/reset-password"): ("auth", "public", None, None),
    ("post", "/auth/send-verification-email"): ("auth", "jwt", None, None),
    ("post", "/auth/sign-in"): ("auth", "public", None, None),
    ("post", "/auth/sign-in-totp"): ("auth", "public", None, None),
    ("post", "/auth/sign-out"): ("auth", "public", None, None),
    ("post", "/auth/sign-up"): ("auth", "public", None, None),
    ("post", "/auth/totp/disable"): ("auth", "jwt", None, None),
    ("post", "/auth/totp/setup"): ("auth", "jwt", None, None),
    ("post", "/auth/totp/verify"): ("auth", "jwt", None, None),
    ("post", "/auth/verify-email"): ("auth", "public", None, None),
    ("get", "/chat/sessions"): ("chat", "key", "chat:read", None),
    ("post", "/chat/sessions"): ("chat", "key", "chat:write", None),
    ("delete", "/chat/sessions/{session_id}"): ("chat", "key", "chat:write", None),
    ("get", "/chat/sessions/{session_id}"): ("chat", "key", "chat:read", None),
    ("patch", "/chat/sessions/{session_id}"): ("chat", "key", "chat:write", None),
    ("post", "/chat/sessions/{session_id}/messages"): ("chat", "key", "chat:write", None),
    ("get", "/enquiries"): ("enquiries", "key", "enquiries:read", None),
    ("post", "/enquiries"): ("enquiries", "key", "enquiries:write", None),
    ("get", "/enquiries/{enquiry_id}"): ("enquiries", "key", "enquiries:read", None),
    ("patch", "/enquiries/{enquiry_id}"): ("enquiries", "key", "enquiries:write", None),
    ("post", "/enquiries/{enquiry_id}/promote-to-session"): ("enquiries", "key", "enquiries:write", None),
    ("get", "/health"): ("health", "public", None, None),
    ("get", "/health/db"): ("health", "public", None, None),
    ("get", "/health/redis"): ("health", "public", None, None),
    ("get", "/internal/metrics"): ("internal", "public", None, None),
    ("get", "/reports/itinerary"): ("reports", "key", "reports:read", None),
    ("get", "/reports/payables"): ("reports", "key", "reports:read", None),
    ("get", "/reports/receivables"): ("reports", "key", "reports:read", None),
    ("get", "/reports/trial-balance"): ("reports", "key", "reports:read", None),
    ("get", "/schemas/money"): ("schemas", "public", None, None),
    ("get", "/tenant-settings"): ("tenant-settings", "key", "tenant:read", None),
    ("patch", "/tenant-settings"): ("tenant-settings", "key", "tenant:write", ADMIN),
}

# auth.md, "Scopes" table (in table order).
SCOPES = [
    "enquiries:read", "enquiries:write", "approvals:read", "approvals:write", "audit:read", "reports:read",
    "chat:read", "chat:write", "tenant:read", "tenant:write", "full",
]

# README "Rate limiting": the routes with a client-IP or e-mail bucket, and their buckets (send-verification-email
# also has the user bucket, implied by JWT access).
CREDENTIAL_BUCKETS = {
    ("post", "/auth/sign-in"): ["auth_ip", "auth_email"],
    ("post", "/auth/sign-in-totp"): ["auth_ip", "auth_email"],
    ("post", "/auth/send-verification-email"): ["auth_email"],  # with the user bucket (JWT)
    ("post", "/auth/request-password-reset"): ["auth_ip", "auth_email"],
    ("post", "/auth/accept-invite"): ["auth_ip"],
    ("post", "/auth/sign-up"): ["signup_ip"],
}
IDEMPOTENT = {("post", "/enquiries"), ("post", "/chat/sessions")}

# README "Request validation": the endpoints that ignore unknown body fields.
IGNORES_UNKNOWN_FIELDS = {
    ("post", "/auth/sign-up"), ("post", "/auth/sign-in"), ("post", "/auth/refresh"), ("post", "/auth/sign-out"),
    ("post", "/auth/verify-email"), ("post", "/chat/sessions/{session_id}/messages"),
}
OPTIONAL_BODY = {("post", "/auth/sign-out"), ("post", "/chat/sessions")}
# Endpoints documented without a body ("No body", or no body mentioned) — GETs, DELETE and these POSTs.
NO_BODY_POSTS = {
    ("post", "/auth/api-keys/{key_id}/revoke"), ("post", "/auth/invites/{invite_id}/revoke"),
    ("post", "/auth/send-verification-email"), ("post", "/auth/totp/setup"),
    ("post", "/enquiries/{enquiry_id}/promote-to-session"),
}

# Public routes that touch neither the database nor a credential bucket.
PROBES = {("get", "/health"), ("get", "/health/db"), ("get", "/health/redis"), ("get", "/internal/metrics"),
          ("get", "/schemas/money")}
# Public routes that answer without a documented possibility of 503 (sign-out swallows every failure).
NO_503 = {("get", "/health"), ("get", "/internal/metrics"), ("get", "/schemas/money"), ("post", "/auth/sign-out")}

# docs/openapi-conventions.md, "Vendor extensions on schemas".
PROPERTY_RULES = {"email", "new_password", "name", "role", "decimal", "locale"}
BODY_RULES = {"sign_in_totp_form"}

RATE_LIMIT_HEADERS = ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy", "RateLimit"]

# data-model.md, "The Money type" (GET /schemas/money returns exactly this).
MONEY_SCHEMA = {
    "title": "Money",
    "description": "An exact amount of money in one ISO 4217 currency. The amount is a decimal, never a binary float, "
    "and its sign is meaningful (negative for refunds and credits).",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "amount": {
            "title": "Amount",
            "description": "Decimal amount given as a JSON number or a numeric string; may be negative.",
            "anyOf": [
                {"type": "number"},
                {"type": "string", "pattern": "^(?!^[-+.]*$)[+-]?0*\\d*\\.?\\d*$"},
            ],
        },
        "currency": {
            "title": "Currency",
            "description": "ISO 4217 alphabetic currency code in upper case, for example INR, USD or AED.",
            "type": "string",
            "minLength": 3,
            "maxLength": 3,
            "pattern": "^[A-Z]{3}$",
        },
    },
    "required": ["amount", "currency"],
}

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    assert OPENAPI_PATH.is_file(), f"{OPENAPI_PATH} is missing"
    with OPENAPI_PATH.open("rb") as handle:
        document = yaml.safe_load(handle)
    assert isinstance(document, dict)
    return document


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def lookup(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local $refs are used: {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"unresolvable $ref {ref}"
        node = node[part]
    return node


def deref(document: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = lookup(document, node["$ref"])
    return node


def walk(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, path + (index,))


def schema_objects(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Schema Object of the document (component schemas, parameter, header and media-type schemas)."""
    for name, schema in document["components"]["schemas"].items():
        yield f"components/schemas/{name}", schema
    for path, node in walk(document):
        if path and path[0] == "components" and len(path) > 1 and path[1] == "schemas":
            continue
        if isinstance(node, dict) and isinstance(node.get("schema"), dict) and ("in" in node or "content" not in node):
            yield "/".join(map(str, path)) + "/schema", node["schema"]


def json_validator(document: dict[str, Any], pointer: str) -> Any:
    """A draft 2020-12 validator for the schema at ``pointer`` with the document's components in scope."""
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema", "components": document["components"],
            "$ref": pointer}
    return jsonschema_rs.validator_for(root, validate_formats=True)


def request_schema(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]


def body_validator(document: dict[str, Any], method: str, path: str) -> Any:
    """Request schemas are self-contained (see test_request_side_is_self_contained): compile them as they are."""
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **request_schema(document, method, path)}
    return jsonschema_rs.validator_for(schema, validate_formats=True)


def spec_dir() -> Path | None:
    candidates = [os.environ.get("VOYAGENT_SPEC_DIR"), OPENAPI_PATH.parent / "spec",
                  OPENAPI_PATH.parent.parent / "shared" / "spec"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "data-model.md").is_file():
            return Path(candidate)
    return None


# ----------------------------------------------------------------------------- document validity


def test_is_openapi_31_document(doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.1.0"
    assert "jsonSchemaDialect" not in doc or doc["jsonSchemaDialect"] == "https://spec.openapis.org/oas/3.1/dialect/base"
    assert doc["info"]["title"] == "Voyagent API"
    assert doc["info"]["version"] == "1.0.0"
    assert doc["info"]["description"].strip()
    assert [s["url"] for s in doc["servers"]] == ["/"]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["apiKeyAuth"]["type"] == "http" and schemes["apiKeyAuth"]["scheme"] == "bearer"
    assert schemes["apiKeyAuth"]["description"].startswith("`vy_…` API key with scopes")


def test_valid_against_official_openapi_31_schema(doc: dict[str, Any]) -> None:
    """Validate with openapi-spec-validator if installed, else the OAS 3.1 meta-schema shipped by schemathesis."""
    as_json = json.loads(json.dumps(doc))
    try:
        from openapi_spec_validator import validate  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        validate(as_json)
        return
    definitions = pytest.importorskip("schemathesis.specs.openapi.definitions")
    meta_schema = definitions.OPENAPI_31
    try:
        import jsonschema  # type: ignore[import-untyped]
    except ImportError:
        jsonschema_rs = pytest.importorskip("jsonschema_rs")
        errors = [f"{list(e.instance_path)}: {e.message}"
                  for e in jsonschema_rs.Draft202012Validator(meta_schema).iter_errors(as_json)]
    else:
        errors = [f"{list(e.absolute_path)}: {e.message}"
                  for e in jsonschema.Draft202012Validator(meta_schema).iter_errors(as_json)]
    assert not errors, "\n".join(errors[:20])


def test_every_schema_object_is_valid_json_schema_2020_12(doc: dict[str, Any]) -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    bad = []
    for where, schema in schema_objects(doc):
        try:
            jsonschema_rs.meta.validate(json.loads(json.dumps(schema)))
        except Exception as exc:  # noqa: BLE001 - report every bad schema
            bad.append(f"{where}: {exc}")
    assert not bad, "\n".join(bad)


def test_every_ref_resolves(doc: dict[str, Any]) -> None:
    refs = [(path, node["$ref"]) for path, node in walk(doc) if isinstance(node, dict) and "$ref" in node]
    assert refs
    for _path, ref in refs:
        lookup(doc, ref)


def test_request_side_is_self_contained(doc: dict[str, Any]) -> None:
    """Parameters and request bodies are inlined so validators and rules can be read without resolving $refs."""
    for method, path, op in operations(doc):
        for section in ("parameters", "requestBody"):
            refs = [p for p, node in walk(op.get(section)) if isinstance(node, dict) and "$ref" in node]
            assert not refs, f"{method} {path} {section} uses $ref at {refs}"


def test_schemathesis_loads_document() -> None:
    schemathesis = pytest.importorskip("schemathesis")
    schema = schemathesis.openapi.from_path(str(OPENAPI_PATH))
    loaded = [result.ok() for result in schema.get_all_operations()]
    assert len(loaded) == 49


# ----------------------------------------------------------------------------- operations


def test_exactly_the_49_endpoints(doc: dict[str, Any]) -> None:
    found = {(method, path) for method, path, _ in operations(doc)}
    assert len(list(operations(doc))) == 49
    assert found == set(EXPECTED), (sorted(found - set(EXPECTED)), sorted(set(EXPECTED) - found))
    for meta in ("/schema", "/openapi.json", "/docs"):
        assert meta not in doc["paths"]


def test_tag_counts(doc: dict[str, Any]) -> None:
    counts: dict[str, int] = {}
    for _, _, op in operations(doc):
        assert len(op["tags"]) == 1
        counts[op["tags"][0]] = counts.get(op["tags"][0], 0) + 1
    assert counts == TAGS
    declared = {tag["name"]: tag for tag in doc["tags"]}
    assert set(declared) == set(TAGS)
    assert all(tag.get("description", "").strip() for tag in declared.values())


def test_operation_identity_and_documentation(doc: dict[str, Any]) -> None:
    ids = []
    for method, path, op in operations(doc):
        where = f"{method.upper()} {path}"
        assert SNAKE_CASE.match(op.get("operationId", "")), where
        ids.append(op["operationId"])
        assert op["tags"][0] == EXPECTED[(method, path)][0], where
        assert op.get("summary", "").strip(), where
        assert len(op.get("description", "").strip()) > 40, where
        assert "**Access:**" in op["description"], where
        for param in op.get("parameters", []):
            assert param.get("description", "").strip(), f"{where} parameter {param['name']}"
    assert len(ids) == len(set(ids)), "duplicate operationIds"


def test_summaries_are_endpoint_titles(doc: dict[str, Any]) -> None:
    directory = spec_dir()
    if directory is None:
        pytest.skip("specification folder not available")
    titles = dict(re.findall(r"^### ((?:GET|POST|PATCH|DELETE) \S+) — (.+)$",
                             (directory / "endpoints.md").read_text(encoding="utf-8"), re.M))
    assert len(titles) == 49
    for method, path, op in operations(doc):
        assert titles[f"{method.upper()} {path}"] == op["summary"]


def test_access_rules_and_security(doc: dict[str, Any]) -> None:
    for method, path, op in operations(doc):
        where = f"{method.upper()} {path}"
        _tag, access, scope, role = EXPECTED[(method, path)]
        assert op["x-voyagent-access"] == access, where
        assert op.get("x-voyagent-scope") == scope, where
        assert op.get("x-voyagent-role") == role, where
        assert op.get("x-voyagent-buckets") == CREDENTIAL_BUCKETS.get((method, path)), where
        assert bool(op.get("x-voyagent-idempotent")) == ((method, path) in IDEMPOTENT), where
        if access == "public":
            assert op["security"] == [], where
        elif access == "jwt":
            assert op["security"] == [{"bearerAuth": []}], where
        else:
            assert op["security"] == [{"bearerAuth": []}, {"apiKeyAuth": [scope]}], where
        if path.startswith("/auth/"):
            assert access != "key", f"{where}: /auth/ routes never accept API keys"


def test_key_scopes_come_from_auth_md(doc: dict[str, Any]) -> None:
    scopes = SCOPES
    directory = spec_dir()
    if directory is not None:
        text = (directory / "auth.md").read_text(encoding="utf-8")
        section = text.split("### Scopes", 1)[1].split("Rules:", 1)[0]
        scopes = re.findall(r"^\| `([a-z:]+)` \|", section, re.M)
        assert scopes == SCOPES
    used = set()
    for method, path, op in operations(doc):
        if op["x-voyagent-access"] == "key":
            assert op["x-voyagent-scope"] in scopes and op["x-voyagent-scope"] != "full", f"{method} {path}"
            used.add(op["x-voyagent-scope"])
    assert used == set(SCOPES) - {"full"}


# ----------------------------------------------------------------------------- responses


def test_error_statuses_per_operation(doc: dict[str, Any]) -> None:
    for method, path, op in operations(doc):
        where = f"{method.upper()} {path}"
        statuses = set(op["responses"])
        access = op["x-voyagent-access"]
        assert {"413", "422", "500"} <= statuses, where
        assert ("503" in statuses) == ((method, path) not in NO_503), where
        if access in ("jwt", "key"):
            assert {"401", "403", "429"} <= statuses, where
            assert "insufficient_scope" in op["responses"]["403"]["description"] or access == "jwt", where
            assert "api_key_not_allowed" in op["responses"]["403"]["description"] or access == "key", where
        if op.get("x-voyagent-role"):
            assert "forbidden_role" in op["responses"]["403"]["description"], where
        if (method, path) in CREDENTIAL_BUCKETS:
            assert "429" in statuses, where
        if access == "public" and (method, path) not in CREDENTIAL_BUCKETS:
            assert "429" not in statuses and "403" not in statuses, where
        if (method, path) in PROBES:
            assert not statuses & {"400", "401", "403", "409", "429"}, where
        if (method, path) in IDEMPOTENT:
            assert "409" in statuses and "idempotency_request_in_progress" in op["responses"]["409"]["description"]
            assert "idempotency_key_reused" in op["responses"]["422"]["description"]
        successes = [s for s in statuses if s.startswith("2")]
        assert len(successes) == 1, where


def test_documented_business_errors(doc: dict[str, Any]) -> None:
    def codes(method: str, path: str, status: str) -> str:
        return doc["paths"][path][method]["responses"][status]["description"]

    assert "export_too_large" in codes("get", "/audit/export.csv", "400")
    assert "invalid_actor_id" in codes("get", "/audit", "422") and "invalid_period" in codes("get", "/audit", "422")
    assert "invalid_session_id" in codes("get", "/approvals", "422")
    assert "invalid_cursor" in codes("get", "/enquiries", "422")
    assert "totp_required" in codes("post", "/auth/sign-in", "401")
    assert "invalid_status" in codes("get", "/auth/invites", "400")
    assert "title_empty" in codes("patch", "/chat/sessions/{session_id}", "422")
    assert "agent_runtime_unavailable" in codes("post", "/chat/sessions/{session_id}/messages", "503")
    assert "turn_in_progress" in codes("delete", "/chat/sessions/{session_id}", "409")
    assert "db_unreachable" in codes("get", "/health/db", "503")
    assert "redis_not_configured" in codes("get", "/health/redis", "503")
    assert "Not Found" in codes("get", "/internal/metrics", "404")
    assert "session_not_found" in codes("get", "/reports/itinerary", "404")
    assert "invalid_status_transition" in codes("patch", "/enquiries/{enquiry_id}", "400")


def test_error_responses_are_shared_components(doc: dict[str, Any]) -> None:
    components = doc["components"]["responses"]
    expected = {"BadRequest": "400", "Unauthorized": "401", "Forbidden": "403", "NotFound": "404",
                "Conflict": "409", "PayloadTooLarge": "413", "ValidationFailed": "422", "RateLimited": "429",
                "InternalError": "500", "Unavailable": "503"}
    assert set(expected) <= set(components)
    by_status = {status: name for name, status in expected.items()}
    for method, path, op in operations(doc):
        for status, response in op["responses"].items():
            if status.startswith("2"):
                continue
            assert response.get("$ref") == f"#/components/responses/{by_status[status]}", f"{method} {path} {status}"
            assert response.get("description", "").strip()
    schema_422 = components["ValidationFailed"]["content"]["application/json"]["schema"]
    assert schema_422 == {"oneOf": [{"$ref": "#/components/schemas/ValidationError"},
                                    {"$ref": "#/components/schemas/ErrorDetail"}]}
    limited = components["RateLimited"]["headers"]
    assert {"Retry-After", *RATE_LIMIT_HEADERS} <= set(limited)
    assert "WWW-Authenticate" in components["Unauthorized"]["headers"]
    for name, response in components.items():
        assert "X-Request-Id" in response["headers"], name


def test_response_headers(doc: dict[str, Any]) -> None:
    for method, path, op in operations(doc):
        limited = op["x-voyagent-access"] != "public" or (method, path) in CREDENTIAL_BUCKETS
        for status, response in op["responses"].items():
            response = deref(doc, response)
            assert "X-Request-Id" in response["headers"], f"{method} {path} {status}"
            if not status.startswith("2"):
                continue
            headers = response["headers"]
            for name in RATE_LIMIT_HEADERS:
                assert (name in headers) == limited, f"{method} {path} {name}"
                if limited:
                    assert headers[name] == {"$ref": f"#/components/headers/{name}"}
            assert ("Idempotent-Replayed" in headers) == ((method, path) in IDEMPOTENT), f"{method} {path}"


def test_success_content_types(doc: dict[str, Any]) -> None:
    special = {
        ("get", "/audit/export.csv"): "text/csv",
        ("get", "/internal/metrics"): "text/plain",
        ("post", "/chat/sessions/{session_id}/messages"): "text/event-stream",
    }
    for method, path, op in operations(doc):
        status, response = next((s, r) for s, r in op["responses"].items() if s.startswith("2"))
        if status == "204":
            assert "content" not in response, f"{method} {path}"
            continue
        media = list(response["content"])
        assert media == [special.get((method, path), "application/json")], f"{method} {path}"
        if media[0] == "text/event-stream":  # the schema of one frame as parsed (schemathesis checks each)
            assert response["content"][media[0]]["schema"]["required"] == ["event", "data"]
        elif media[0] != "application/json":
            assert response["content"][media[0]]["schema"]["type"] == "string"
    sse = doc["paths"]["/chat/sessions/{session_id}/messages"]["post"]["responses"]["200"]
    frame_doc = sse["content"]["text/event-stream"]["schema"]["description"]
    for fragment in ("agent_event", "heartbeat", "AgentEvent", "final"):
        assert fragment in frame_doc


def _closed_objects(document: dict[str, Any], schema: Any, where: str, seen: set[str]) -> Iterator[str]:
    """Yield problems of object schemas that are not closed (all properties required, no extras)."""
    if isinstance(schema, dict) and "$ref" in schema:
        ref = schema["$ref"]
        if ref in seen:
            return
        seen.add(ref)
        yield from _closed_objects(document, lookup(document, ref), ref, seen)
        return
    if not isinstance(schema, dict) or "const" in schema:
        return
    props = schema.get("properties")
    if props is not None:
        if schema.get("additionalProperties") is not False:
            yield f"{where}: additionalProperties must be false"
        required = set(schema.get("required", []))
        optional = {"driver", "error", "approval_required", "approved_by", "approved_at", "completed_at"}
        if where.endswith("payload") and required == {"inputs", "outputs", "entity_refs"}:
            required |= optional  # AuditEvent.payload: these keys appear only when set (endpoints.md)
        if required != set(props):
            yield f"{where}: required {sorted(required)} != properties {sorted(props)}"
        for key, value in props.items():
            yield from _closed_objects(document, value, f"{where}.{key}", seen)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from _closed_objects(document, schema[key], f"{where}[{key}]", seen)
    for key in ("oneOf", "anyOf", "allOf"):
        for index, sub in enumerate(schema.get(key, [])):
            yield from _closed_objects(document, sub, f"{where}/{key}/{index}", seen)


def test_success_schemas_are_closed(doc: dict[str, Any]) -> None:
    problems: list[str] = []
    for method, path, op in operations(doc):
        for status, response in op["responses"].items():
            if status.startswith("2") and "content" in response and "application/json" in response["content"]:
                schema = response["content"]["application/json"]["schema"]
                problems.extend(_closed_objects(doc, schema, f"{method} {path} {status}", set()))
    assert not problems, "\n".join(problems)


def test_shared_components_exist(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for name in ("PublicUser", "AuthResponse", "TokenPair", "InviteSummary", "ApiKeySummary", "ApprovalItem",
                 "EnquiryResponse", "AuditEvent", "SessionSummary", "TenantSettings", "Money", "MoneyOut",
                 "AgingReport", "TrialBalance", "Itinerary", "AgentEvent", "ValidationError", "ErrorDetail"):
        assert name in schemas, name
    assert set(schemas["AgentEvent"]["required"]) == set(schemas["AgentEvent"]["properties"])
    assert len(schemas["AgentEvent"]["properties"]) == 12
    for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy", "RateLimit",
                 "Retry-After", "X-Request-Id", "Idempotent-Replayed"):
        assert name in doc["components"]["headers"], name


def test_paginated_responses(doc: dict[str, Any]) -> None:
    pages = {"/enquiries": "items", "/approvals": "items", "/audit": "items", "/chat/sessions": "sessions"}
    for path, items_key in pages.items():
        schema = deref(doc, doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"])
        assert list(schema["properties"]) == [items_key, "total", "limit", "offset", "next_cursor"]
        assert schema["properties"]["total"]["type"] == ["integer", "null"]
        assert schema["properties"]["next_cursor"]["type"] == ["string", "null"]


# ----------------------------------------------------------------------------- parameters


def params(doc: dict[str, Any], method: str, path: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in doc["paths"][path][method].get("parameters", [])}


def test_path_parameters_are_plain_strings(doc: dict[str, Any]) -> None:
    for method, path, op in operations(doc):
        names = re.findall(r"{([^}]+)}", path)
        declared = [p for p in op.get("parameters", []) if p["in"] == "path"]
        assert sorted(p["name"] for p in declared) == sorted(names), f"{method} {path}"
        for param in declared:
            assert param["required"] is True and param["schema"] == {"type": "string"}, f"{method} {path}"


def test_handler_checked_parameters_are_plain_strings(doc: dict[str, Any]) -> None:
    plain = [("get", "/approvals", "session_id"), ("get", "/audit", "actor_id"),
             ("get", "/audit/export.csv", "actor_id"), ("get", "/auth/invites", "status"),
             ("post", "/enquiries", "Idempotency-Key"), ("post", "/chat/sessions", "Idempotency-Key"),
             ("post", "/chat/sessions/{session_id}/messages", "Last-Event-ID")]
    plain += [(m, p, "cursor") for m, p in (("get", "/approvals"), ("get", "/audit"), ("get", "/enquiries"),
                                            ("get", "/chat/sessions"))]
    for method, path, name in plain:
        assert params(doc, method, path)[name]["schema"] == {"type": "string"}, f"{method} {path} {name}"


def test_pagination_parameters(doc: dict[str, Any]) -> None:
    limits = {"/enquiries": (50, 500), "/approvals": (50, 500), "/audit": (50, 200), "/chat/sessions": (200, 200)}
    for path, (default, maximum) in limits.items():
        p = params(doc, "get", path)
        assert p["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": maximum, "default": default}
        assert p["offset"]["schema"] == {"type": "integer", "minimum": 0, "default": 0}
        assert p["include_total"]["schema"] == {"type": "boolean", "default": True}
    for method, path, op in operations(doc):
        if path not in limits or method != "get":
            assert not {"limit", "offset", "cursor", "include_total"} & set(params(doc, method, path)), path


def test_query_parameter_types(doc: dict[str, Any]) -> None:
    assert params(doc, "get", "/approvals")["status"]["schema"]["enum"] == [
        "pending", "granted", "rejected", "expired", "all"]
    assert params(doc, "get", "/approvals")["status"]["schema"]["default"] == "pending"
    assert params(doc, "get", "/enquiries")["status"]["schema"]["enum"] == ["new", "quoted", "booked", "cancelled", "all"]
    assert params(doc, "get", "/enquiries")["status"]["schema"]["default"] == "all"
    for path in ("/audit", "/audit/export.csv"):
        kind = params(doc, "get", path)["kind"]
        assert kind["schema"] == {"type": "array", "items": {"type": "string"}}
        assert kind["style"] == "form" and kind["explode"] is True
        assert params(doc, "get", path)["from"]["schema"] == {"type": "string", "format": "date"}
    for name in ("depart_from", "depart_to", "created_from", "created_to"):
        assert params(doc, "get", "/enquiries")[name]["schema"] == {"type": "string", "format": "date"}
    for path in ("/reports/payables", "/reports/receivables"):
        p = params(doc, "get", path)
        assert p["from"]["required"] and p["to"]["required"] and not p["currency"]["required"]
        assert p["currency"]["schema"]["pattern"] == "^[A-Z]{3}$"
    itinerary = params(doc, "get", "/reports/itinerary")["session_id"]
    assert itinerary["required"] and itinerary["schema"] == {"type": "string", "minLength": 1}
    assert params(doc, "get", "/reports/trial-balance")["include_zero"]["schema"]["type"] == "integer"
    lookup_token = params(doc, "get", "/auth/invites/lookup")["token"]
    assert lookup_token["required"] and lookup_token["schema"] == {"type": "string", "minLength": 1, "maxLength": 128}


# ----------------------------------------------------------------------------- request bodies


def test_request_bodies(doc: dict[str, Any]) -> None:
    for method, path, op in operations(doc):
        where = f"{method.upper()} {path}"
        body = op.get("requestBody")
        if method in ("get", "delete") or (method, path) in NO_BODY_POSTS:
            assert body is None, where
            continue
        assert body is not None, where
        assert list(body["content"]) == ["application/json"], where
        assert body["required"] is ((method, path) not in OPTIONAL_BODY), where
        schema = body["content"]["application/json"]["schema"]
        assert schema["type"] == "object", where
        assert schema["additionalProperties"] is ((method, path) in IGNORES_UNKNOWN_FIELDS), where
        for name, prop in schema.get("properties", {}).items():
            assert prop.get("description", "").strip(), f"{where} {name}"
        if method == "patch" and path != "/chat/sessions/{session_id}":
            assert "required" not in schema, where
            for name, prop in schema["properties"].items():
                accepts_null = ("null" in prop.get("type", [])) or {"type": "null"} in prop.get("anyOf", [])
                assert accepts_null, f"{where} {name} must accept null"
                if "enum" in prop:
                    assert None in prop["enum"], f"{where} {name}"
    chat_create = request_schema(doc, "post", "/chat/sessions")
    assert "properties" not in chat_create and chat_create["additionalProperties"] is False


def test_required_body_fields(doc: dict[str, Any]) -> None:
    expected = {
        ("post", "/approvals/{approval_id}/resolve"): ["granted"],
        ("post", "/auth/accept-invite"): ["token", "password", "full_name"],
        ("post", "/auth/api-keys"): ["name"],
        ("post", "/auth/invites"): ["email"],
        ("post", "/auth/refresh"): ["refresh_token"],
        ("post", "/auth/request-password-reset"): ["email"],
        ("post", "/auth/reset-password"): ["token", "new_password"],
        ("post", "/auth/sign-in"): ["email", "password"],
        ("post", "/auth/sign-up"): ["email", "password", "full_name", "agency_name"],
        ("post", "/auth/totp/disable"): ["password", "code"],
        ("post", "/auth/totp/verify"): ["code"],
        ("post", "/auth/verify-email"): ["token"],
        ("patch", "/chat/sessions/{session_id}"): ["title"],
        ("post", "/enquiries"): ["customer_name"],
    }
    for method, path, op in operations(doc):
        if "requestBody" in op:
            schema = request_schema(doc, method, path)
            assert sorted(schema.get("required", [])) == sorted(expected.get((method, path), [])), f"{method} {path}"


def test_semantic_rules(doc: dict[str, Any]) -> None:
    for method, path, op in operations(doc):
        if "requestBody" not in op:
            continue
        schema = request_schema(doc, method, path)
        if "x-voyagent-rule" in schema:
            assert schema["x-voyagent-rule"] in BODY_RULES
        for name, prop in schema.get("properties", {}).items():
            rule = prop.get("x-voyagent-rule")
            if rule is None:
                continue
            assert rule in PROPERTY_RULES, f"{method} {path} {name}: {rule}"
            types = prop.get("type")
            if rule == "email":
                assert prop["maxLength"] == 320 and types in ("string", ["string", "null"])
            elif rule == "new_password":
                assert (prop["type"], prop["minLength"], prop["maxLength"]) == ("string", 12, 128)
            elif rule in ("name", "role"):
                assert set(prop) <= {"type", "description", "x-voyagent-rule", "default"}, f"{path} {name}"
            elif rule == "locale":
                assert types == ["string", "null"] and "enum" not in prop
            elif rule == "decimal":
                assert prop["anyOf"] == [{"type": "number"}, {"type": "string"}, {"type": "null"}]
                assert prop["x-voyagent-minimum"] == 0 and prop["x-voyagent-exclusive-maximum"] == 10**12
    totp = request_schema(doc, "post", "/auth/sign-in-totp")
    assert totp["x-voyagent-rule"] == "sign_in_totp_form" and "required" not in totp
    assert set(totp["properties"]) == {"email", "password", "totp_code", "totp_token"}


def test_field_rules(doc: dict[str, Any]) -> None:
    enquiry = request_schema(doc, "post", "/enquiries")["properties"]
    assert "minimum" not in enquiry["pax_count"] and enquiry["pax_count"]["maximum"] == 2147483647
    assert enquiry["customer_name"]["minLength"] == 1 and enquiry["customer_name"]["maxLength"] == 255
    assert enquiry["budget_currency"] == {**enquiry["budget_currency"], "type": ["string", "null"]}
    assert set(enquiry["budget_currency"]) <= {"type", "description"}
    assert set(enquiry["session_id"]) <= {"type", "description"}
    keys = request_schema(doc, "post", "/auth/api-keys")["properties"]
    assert keys["scopes"]["type"] == ["array", "null"]
    assert (keys["scopes"]["minItems"], keys["scopes"]["maxItems"]) == (1, 11)
    assert keys["scopes"]["items"]["enum"] == SCOPES
    assert (keys["expires_in_days"]["minimum"], keys["expires_in_days"]["maximum"]) == (1, 3650)
    assert request_schema(doc, "post", "/auth/invites")["properties"]["role"]["default"] == "agent"
    settings = request_schema(doc, "patch", "/tenant-settings")["properties"]
    assert settings["model"]["enum"] == ["claude-sonnet-4-5", "claude-opus-4-6", "claude-haiku-4-5-20251001", None]
    assert settings["default_currency"]["pattern"] == "^[A-Z]{3}$"
    assert (settings["rate_limit_per_minute"]["minimum"], settings["rate_limit_per_minute"]["maximum"]) == (1, 10000)
    chat = request_schema(doc, "post", "/chat/sessions/{session_id}/messages")["properties"]
    assert chat["message"]["maxLength"] == 10000 and chat["message"]["default"] == ""
    assert chat["approvals"]["additionalProperties"] == {"type": "boolean"}
    title = request_schema(doc, "patch", "/chat/sessions/{session_id}")["properties"]["title"]
    assert title["type"] == "string"
    resolve = request_schema(doc, "post", "/approvals/{approval_id}/resolve")["properties"]
    assert resolve["granted"]["type"] == "boolean" and resolve["reason"]["maxLength"] == 1024


def test_sample_request_bodies(doc: dict[str, Any]) -> None:
    enquiry = body_validator(doc, "post", "/enquiries")
    assert enquiry.is_valid({"customer_name": "Asha Rao", "budget_amount": "80000", "depart_date": "2026-07-01"})
    assert enquiry.is_valid({"customer_name": "Asha Rao", "pax_count": 0, "budget_currency": "inr"})  # 400s later
    assert not enquiry.is_valid({"customer_name": "", "tenant_id": "x"})
    assert not enquiry.is_valid({"customer_name": "A", "status": "closed"})
    patch = body_validator(doc, "patch", "/enquiries/{enquiry_id}")
    assert patch.is_valid({}) and patch.is_valid({"status": None, "customer_name": None, "pax_count": None})
    totp = body_validator(doc, "post", "/auth/sign-in-totp")
    assert totp.is_valid({"totp_token": "t", "totp_code": "123456"})
    assert not totp.is_valid({"totp_token": "t", "totp_code": "123", "extra": 1})
    sign_in = body_validator(doc, "post", "/auth/sign-in")
    assert sign_in.is_valid({"email": "a@b.co", "password": "x", "tenant_id": "ignored"})
    chat = body_validator(doc, "post", "/chat/sessions/{session_id}/messages")
    assert chat.is_valid({}) and chat.is_valid({"message": "", "approvals": {"ap-t-1-book_offer": True}})
    assert not chat.is_valid({"approvals": {"ap-1": "yes"}})
    create_session = body_validator(doc, "post", "/chat/sessions")
    assert create_session.is_valid({}) and not create_session.is_valid({"title": "x"})


def test_sample_responses(doc: dict[str, Any]) -> None:
    errors = json_validator(doc, "#/components/responses/ValidationFailed/content/application~1json/schema")
    assert errors.is_valid({"detail": [{"loc": ["body", "scopes", 0], "msg": "m", "type": "literal_error",
                                        "input": "x"}]})
    assert errors.is_valid({"detail": "invalid_cursor"})
    assert not errors.is_valid({"detail": []})
    detail = json_validator(doc, "#/components/schemas/ErrorDetail")
    assert detail.is_valid({"detail": {"error": "password_too_weak", "code": "password_common"}})
    assert detail.is_valid({"detail": "totp_required", "totp_token": "eyJ..."})
    event = json_validator(doc, "#/components/schemas/AgentEvent")
    final = {"kind": "final", "session_id": "0190a1b2-0000-7000-8000-000000000002", "turn_id": "t-4be1c2f39a77",
             "timestamp": "2026-07-01T10:00:00.123456Z", "text": None, "tool_name": None, "tool_input": None,
             "tool_output": None, "tool_call_id": None, "approval_id": None, "approval_summary": None,
             "error_message": None}
    assert event.is_valid(final)
    assert not event.is_valid({k: v for k, v in final.items() if k != "text"})
    money_out = json_validator(doc, "#/components/schemas/MoneyOut")
    assert money_out.is_valid({"amount": "-150.00", "currency": "INR"})
    assert not money_out.is_valid({"amount": 150, "currency": "INR"})
    assert not money_out.is_valid({"amount": "150.0", "currency": "INR"})


# ----------------------------------------------------------------------------- Money


def test_money_schema_matches_data_model(doc: dict[str, Any]) -> None:
    money = doc["components"]["schemas"]["Money"]
    assert money == MONEY_SCHEMA
    directory = spec_dir()
    if directory is not None:
        text = (directory / "data-model.md").read_text(encoding="utf-8")
        section = text.split("## The Money type", 1)[1]
        block = re.search(r"```json\n(.*?)\n```", section, re.S)
        assert block is not None
        assert money == json.loads(block.group(1))


def test_money_schema_endpoint_returns_the_component(doc: dict[str, Any]) -> None:
    response = doc["paths"]["/schemas/money"]["get"]["responses"]["200"]
    schema = response["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/MoneySchemaDocument"}
    document_schema = lookup(doc, schema["$ref"])
    # The body *is* the Money JSON Schema (not a Money value), hence `const`.
    assert document_schema["const"] == doc["components"]["schemas"]["Money"]
    assert json_validator(doc, schema["$ref"]).is_valid(copy.deepcopy(MONEY_SCHEMA))
    assert not json_validator(doc, schema["$ref"]).is_valid({"amount": "1.00", "currency": "INR"})
