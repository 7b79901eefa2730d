"""Validate path, query and body against openapi.yaml before the handler runs (check 6 → 422 list shape)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from voyagent.contract import (MAX_JSON_DEPTH, Operation, coerce_param, json_depth_exceeds, nul_errors,
                               validate_body)
from voyagent.errors import ValidationFailed, validation_item
from voyagent.keys import BODY, QUERY

_MISSING = object()
LARGE_BODY_BYTES = 64 * 1024


def _is_json(request: web.Request) -> bool:
    return request.content_type == "application/json"


async def _let_others_run(raw: bytes) -> None:
    """Yield to the event loop between the costly steps of a large body (each a millisecond or two per MiB), so
    that other requests are served between them rather than after the whole body is judged."""
    if len(raw) > LARGE_BODY_BYTES:
        await asyncio.sleep(0)


async def read_json_body(request: web.Request) -> tuple[Any, list[dict[str, Any]]]:
    """The parsed body (``_MISSING`` when absent) or a json_invalid item; depth and NUL rules applied."""
    if not request.body_exists or not _is_json(request):
        return _MISSING, []
    raw = await request.read()
    if not raw.strip():
        return _MISSING, []
    # Walk the parsed value only when the raw text could hold what the walk looks for: nesting needs that many
    # brackets, and U+0000 reaches JSON only as the escape \u0000. A 1 MiB array is then never walked.
    may_nest_too_deep = raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH
    may_hold_nul = b"\\" in raw and b"\\u0000" in raw
    await _let_others_run(raw)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _MISSING, [validation_item(["body"], "json_invalid", "JSON decode error")]
    if may_nest_too_deep and json_depth_exceeds(value):
        return _MISSING, [validation_item(["body"], "json_invalid", "JSON nested too deeply")]
    nul = nul_errors(value, ["body"]) if may_hold_nul else []
    await _let_others_run(raw)  # the schema and the rules run next
    return value, nul


async def validate_request(request: web.Request, operation: Operation) -> None:
    """Store coerced query values and the validated body on the request, or raise ValidationFailed."""
    errors: list[dict[str, Any]] = []
    for param in operation.path_params:
        value = request.match_info.get(param.name, "")
        if "\x00" in value:
            errors.extend(nul_errors(value, ["path", param.name]))
    query: dict[str, Any] = {}
    if operation.query_params:
        raw_query = request.query
        for param in operation.query_params:
            if param.is_array:
                raw: Any = raw_query.getall(param.name, [])
                if not raw:
                    raw = _MISSING
            else:
                values = raw_query.getall(param.name, ())
                raw = values[-1] if values else _MISSING
            if raw is _MISSING:
                if param.required:
                    errors.append(validation_item(["query", param.name], "missing", "Field required"))
                else:
                    query[param.name] = param.default
                continue
            nul = nul_errors(raw, ["query", param.name])
            if nul:
                errors.extend(nul)
                continue
            value, param_errors = coerce_param(param, raw)
            errors.extend(param_errors)
            query[param.name] = value
    request[QUERY] = query
    body_spec = operation.body
    body: Any = None
    if body_spec is not None:
        parsed, body_errors = await read_json_body(request)
        if body_errors:
            errors.extend(body_errors)
        elif parsed is _MISSING:
            if body_spec.required:
                errors.append(validation_item(["body"], "missing", "Field required"))
        else:
            body, body_errors = validate_body(body_spec, parsed)
            errors.extend(body_errors)
    request[BODY] = body
    if errors:
        raise ValidationFailed(errors)
