"""The ``/docs`` page: Swagger UI, served by the app from its package data, over the OpenAPI document.

Why Swagger UI: it is the reference viewer integrators already know (try-it-out, filter, request snippets),
and its browser build comes from the npm package ``swagger-ui-dist`` at the version pinned in
``static/swagger-ui/VERSION`` (``bin/vendor-swagger-ui`` refreshes it). The page loads nothing from elsewhere.

Swagger UI shows the ``x-voyagent-*`` extensions only as a raw table, so each operation's access rule, API-key
scope, role gate and rate-limit buckets are written in words into its description in ``openapi.yaml`` (its
"Access" and "Rate limit" paragraphs), where any viewer of ``/openapi.json`` shows them; tests/test_docs_page.py
keeps those paragraphs in step with the extensions the middleware enforces. The page inlines a copy of the document (its ``servers`` set
to ``BASE_PATH``, so try-it-out works under it), followed by a ``<noscript>`` index of every operation, so the
raw HTML names every path and stays useful without JavaScript.
"""

from __future__ import annotations

import html
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from voyagent.contract import Contract, Operation

__all__ = ["ASSETS", "CONTENT_SECURITY_POLICY", "access_notes", "render_docs_html", "viewer_document"]

_STATIC = Path(str(resources.files("voyagent"))) / "static"

ASSETS: dict[str, Path] = {
    "swagger-ui-bundle.js": _STATIC / "swagger-ui" / "swagger-ui-bundle.js",
    "swagger-ui.css": _STATIC / "swagger-ui" / "swagger-ui.css",
    "docs.js": _STATIC / "docs.js",
    "docs.css": _STATIC / "docs.css",
}
"""Files served under ``/docs/assets/<name>``; nothing else is."""

_NOTES = ("**Access:**", "**Rate limit:**")


def access_notes(description: str) -> list[str]:
    """The description's "Access" and "Rate limit" paragraphs (written from the x-voyagent-* extensions)."""
    return [paragraph.strip() for paragraph in description.split("\n\n") if paragraph.strip().startswith(_NOTES)]


def viewer_document(contract: Contract, base_path: str) -> dict[str, Any]:
    """A copy of the document whose only server is BASE_PATH, so try-it-out calls this server under it."""
    document: dict[str, Any] = orjson.loads(contract.json_bytes)
    document["servers"] = [{"url": base_path or "/", "description": "This server"}]
    return document


CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""The page runs only the app's own scripts and talks only to the app (try-it-out included)."""


def _noscript_index(contract: Contract, document: dict[str, Any], base_path: str) -> str:
    """Every operation grouped by tag (the document's tag order): method, path, summary, access."""
    esc = html.escape
    tag_order = [tag["name"] for tag in document.get("tags", [])]
    by_tag: dict[str, list[Operation]] = {}
    for operation in contract.operations.values():
        by_tag.setdefault(operation.tag, []).append(operation)
    tags = [tag for tag in tag_order if tag in by_tag] + [tag for tag in by_tag if tag not in tag_order]
    parts = [
        '<noscript><main class="vy-index">',
        f"<p>The interactive reference needs JavaScript. Every operation is listed below; the full document is "
        f'<a href="{esc(base_path)}/openapi.json">{esc(base_path)}/openapi.json</a>.</p>',
    ]
    for tag in tags:
        parts.append(f"<h2>{esc(tag)}</h2><ul>")
        for operation in by_tag[tag]:
            raw = document["paths"][operation.path][operation.method.lower()]
            responses = ", ".join(esc(code) for code in raw.get("responses", {}))
            params = ", ".join(f"{esc(p.name)} ({p.location})" for p in (*operation.path_params,
                                                                          *operation.query_params))
            parts.append(
                f"<li><code>{operation.method} {esc(operation.path)}</code> {esc(raw.get('summary', ''))}"
                + "".join(f"<br>{esc(note.replace('**', '').replace('`', ''))}"
                          for note in access_notes(raw.get("description", "")))
                + (f"<br>Parameters: {params}" if params else "")
                + (" · request body (JSON)" if operation.body else "")
                + f"<br>Responses: {responses}</li>"
            )
        parts.append("</ul>")
    parts.append("</main></noscript>")
    return "\n".join(parts)


def render_docs_html(contract: Contract, *, base_path: str = "") -> str:
    """The whole page, rendered once at start-up."""
    esc = html.escape
    document = viewer_document(contract, base_path)
    info = document.get("info", {})
    title = f"{info.get('title', 'API')} {info.get('version', '')}".strip()
    assets = f"{esc(base_path)}/docs/assets"
    # JSON inside <script> ends at the first "</": escaping every "<" keeps any description inert.
    inlined = orjson.dumps(document).decode().replace("<", "\\u003c")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} — reference</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="stylesheet" href="{assets}/docs.css">
</head>
<body>
<header class="vy-header"><strong>{esc(title)}</strong>
<a href="{esc(base_path)}/openapi.json">OpenAPI document (JSON)</a></header>
<div id="swagger-ui"></div>
{_noscript_index(contract, document, base_path)}
<script type="application/json" id="openapi-document">{inlined}</script>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/docs.js"></script>
</body>
</html>
"""
