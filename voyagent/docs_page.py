"""Render the self-contained ``/docs`` API reference page from the OpenAPI document.

The server calls :func:`render_docs_html` once at start-up and serves the resulting string as
``text/html; charset=utf-8``.  The page has no external assets: the stylesheet and the small search
script are inline, and a ``Content-Security-Policy`` meta tag (hash based) forbids loading anything
else.  Every string taken from the document is HTML-escaped; descriptions are rendered with a tiny
"markdown-lite" formatter (paragraphs, `code`, **bold**, *emphasis*, [links](https://…), bullet and
numbered lists, ``|`` tables, fenced code) that never passes raw HTML through.

Markup contract used by tests and by the page script:

* each operation is one ``<section class="op" id="op-<operationId>" data-operation-id=…
  data-method="GET" data-path="/…" data-tag=… data-search=…>``; no other element carries
  ``data-operation-id`` and no other ``<section>`` element exists in the page;
* operations are grouped in ``<div class="tag-group" id="tag-<tag>" data-tag-group=…>`` in the order
  of the document's ``tags`` list (undeclared tags follow, then ``default`` for untagged ones);
* components schemas are listed in ``<details class="schema" id="schema-<Name>">``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from typing import Any

__all__ = ["content_security_policy", "render_docs_html"]

_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

_RULE_NOTES = {
    "email": "must look like an e-mail address (else value_error invalid_email)",
    "new_password": "needs at least one letter and one digit "
    "(else value_error password_must_contain_letter_and_digit)",
    "name": "trimmed; 1–120 characters, not blank (else value_error <field>_required)",
    "role": "agency_admin, ticketing_lead, accounting_lead, agent or viewer (else value_error invalid_role)",
    "decimal": "a JSON number or a numeric string (else decimal_parsing)",
    "sign_in_totp_form": "send exactly one of the two forms (else value_error credentials_required)",
}

_ACCESS_LABELS = {
    "public": "Public",
    "jwt": "JWT only",
    "key": "JWT or API key",
}


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _slug(value: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.:-]+", "-", value).strip("-")
    return slug or "x"


def _display_tag(tag: str, info: dict) -> str:
    name = info.get("x-displayName") or tag
    name = str(name)
    return name[:1].upper() + name[1:]


def _plain(text: Any) -> str:
    """First paragraph of a description without markdown punctuation (for title attributes)."""
    if not text:
        return ""
    first = str(text).strip().split("\n\n", 1)[0]
    return re.sub(r"[`*]", "", " ".join(first.split()))[:300]


def _json_literal(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _fmt_number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------------------------
# markdown-lite
# --------------------------------------------------------------------------------------------

_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_EMPH = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")
_SAFE_URL = re.compile(r"^(https?://|mailto:|#|/(?!/)|\./)", re.I)
_BULLET = re.compile(r"^\s{0,3}([-*+])\s+(.*)$")
_NUMBERED = re.compile(r"^\s{0,3}(\d{1,3})[.)]\s+(.*)$")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


def _inline_text(text: str) -> str:
    """Escape a non-code run of text, then apply bold/emphasis/links to the escaped string."""
    out = _esc(text)

    def link(match: re.Match[str]) -> str:
        label, url = match.group(1), html.unescape(match.group(2))
        if not _SAFE_URL.match(url):
            return match.group(0)
        return f'<a href="{_esc(url)}">{label}</a>'

    out = _LINK.sub(link, out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    out = _EMPH.sub(r"<em>\1</em>", out)
    return out


def _inline(text: str) -> str:
    parts: list[str] = []
    pos = 0
    for match in _CODE_SPAN.finditer(text):
        parts.append(_inline_text(text[pos : match.start()]))
        parts.append(f"<code>{_esc(match.group(2).strip() or match.group(2))}</code>")
        pos = match.end()
    parts.append(_inline_text(text[pos:]))
    return "".join(parts)


def _split_row(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    cells: list[str] = []
    buf: list[str] = []
    in_code = False
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line) and line[i + 1] == "|":
            buf.append("|")
            i += 2
            continue
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code:
            cells.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
        i += 1
    cells.append("".join(buf).strip())
    return cells


def _md_table(lines: list[str]) -> str:
    rows = [_split_row(line) for line in lines if not _TABLE_SEP.match(line)]
    has_header = len(lines) > 1 and bool(_TABLE_SEP.match(lines[1]))
    out = ['<div class="table-wrap"><table class="md">']
    if has_header and rows:
        out.append("<thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in rows[0]) + "</tr></thead>")
        rows = rows[1:]
    out.append("<tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _md(text: Any, *, compact: bool = False) -> str:
    """Render plain text / markdown-lite as safe HTML.

    With ``compact`` a description made of a single paragraph is returned without ``<p>``.
    """
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks: list[str] = []
    para: list[str] = []
    paragraphs_only = True

    def flush() -> None:
        if para:
            blocks.append("<p>" + _inline(" ".join(s.strip() for s in para)) + "</p>")
            para.clear()

    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            flush()
            i += 1
            continue
        if stripped.startswith("```") or stripped.startswith("~~~"):
            flush()
            fence = stripped[:3]
            i += 1
            code: list[str] = []
            while i < n and not lines[i].strip().startswith(fence):
                code.append(lines[i])
                i += 1
            i += 1
            blocks.append(f'<pre class="code"><code>{_esc(chr(10).join(code))}</code></pre>')
            paragraphs_only = False
            continue
        if stripped.startswith("|"):
            flush()
            table: list[str] = []
            while i < n and lines[i].strip().startswith("|"):
                table.append(lines[i])
                i += 1
            blocks.append(_md_table(table))
            paragraphs_only = False
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            blocks.append(f'<p class="md-h">{_inline(heading.group(2))}</p>')
            paragraphs_only = False
            i += 1
            continue
        bullet = _BULLET.match(line)
        numbered = None if bullet else _NUMBERED.match(line)
        if bullet or numbered:
            flush()
            ordered = numbered is not None
            pattern = _NUMBERED if ordered else _BULLET
            items: list[list[str]] = []
            while i < n:
                current = lines[i]
                m = pattern.match(current)
                if m:
                    items.append([m.group(2)])
                elif current.strip() and items and (current.startswith((" ", "\t"))):
                    items[-1].append(current.strip())
                else:
                    break
                i += 1
            tag = "ol" if ordered else "ul"
            start = ""
            if ordered and numbered and numbered.group(1) != "1":
                start = f' start="{int(numbered.group(1))}"'
            blocks.append(
                f"<{tag}{start}>"
                + "".join(f"<li>{_inline(' '.join(item))}</li>" for item in items)
                + f"</{tag}>"
            )
            paragraphs_only = False
            continue
        para.append(line)
        i += 1
    flush()
    if compact and paragraphs_only and len(blocks) == 1:
        return blocks[0][3:-4]
    return "".join(blocks)


# --------------------------------------------------------------------------------------------
# Example values from simple regular expressions
# --------------------------------------------------------------------------------------------


def _example_from_pattern(pattern: str) -> str | None:
    def gen(p: str) -> str | None:
        # take the first top-level alternative
        depth = 0
        for idx, ch in enumerate(p):
            if ch == "\\":
                continue
            if ch in "([":
                depth += 1
            elif ch in ")]":
                depth -= 1
            elif ch == "|" and depth == 0 and (idx == 0 or p[idx - 1] != "\\"):
                p = p[:idx]
                break
        out: list[str] = []
        i = 0
        while i < len(p):
            ch = p[i]
            is_group = False
            if ch == "^" and i == 0:
                i += 1
                continue
            if ch == "$" and i == len(p) - 1:
                i += 1
                continue
            if ch == "\\":
                if i + 1 >= len(p):
                    return None
                nxt = p[i + 1]
                i += 2
                if nxt == "d":
                    atom = "4"
                elif nxt == "w":
                    atom = "a"
                elif nxt == "s":
                    atom = " "
                elif nxt.isalnum():
                    return None
                else:
                    atom = nxt
            elif ch == "[":
                j = i + 1
                if j < len(p) and p[j] == "^":
                    return None
                while j < len(p) and (p[j] != "]" or j == i + 1):
                    j += 2 if p[j] == "\\" else 1
                if j >= len(p):
                    return None
                cls = p[i + 1 : j]
                i = j + 1
                if cls.startswith("\\"):
                    atom = {"d": "4", "w": "a", "s": " "}.get(cls[1:2], cls[1:2])
                else:
                    atom = cls[0]
                    if len(cls) >= 3 and cls[1] == "-" and cls[0] == "a" and "A" in cls:
                        atom = "a"
            elif ch == "(":
                depth = 0
                j = i
                while j < len(p):
                    if p[j] == "\\":
                        j += 2
                        continue
                    if p[j] == "(":
                        depth += 1
                    elif p[j] == ")":
                        depth -= 1
                        if depth == 0:
                            break
                    j += 1
                if j >= len(p):
                    return None
                inner = p[i + 1 : j]
                if inner.startswith("?:"):
                    inner = inner[2:]
                elif inner.startswith("?"):
                    return None
                sub = gen(inner)
                if sub is None:
                    return None
                atom = sub
                is_group = True
                i = j + 1
            elif ch == ".":
                atom = "x"
                i += 1
            elif ch in "*+?{})]|$^":
                return None
            else:
                atom = ch
                i += 1
            count = 1
            if i < len(p) and p[i] in "*+?{":
                q = p[i]
                if q == "?":
                    count = 1 if is_group else 0
                    i += 1
                elif q == "*":
                    count = 1
                    i += 1
                elif q == "+":
                    count = 1
                    i += 1
                else:
                    m = re.match(r"\{(\d+)(?:,(\d*))?\}", p[i:])
                    if not m:
                        return None
                    lo = int(m.group(1))
                    hi = m.group(2)
                    count = lo
                    if lo == 0 and hi:
                        count = 1
                    if hi and hi.isdigit() and lo < int(hi) and atom.isdigit() and lo < 2:
                        count = min(int(hi), 2)
                    i += m.end()
                if i < len(p) and p[i] in "?+":  # lazy / possessive markers
                    i += 1
            out.append(atom * count)
        return "".join(out)

    try:
        candidate = gen(pattern)
        if candidate is not None and re.search(pattern, candidate):
            return candidate
    except (re.error, IndexError, ValueError, RecursionError):
        return None
    return None


# --------------------------------------------------------------------------------------------
# Renderer
# --------------------------------------------------------------------------------------------


class _Operation:
    __slots__ = ("method", "path", "op", "op_id", "tag", "params", "anchor", "path_item")

    def __init__(self, method: str, path: str, op: dict, path_item: dict) -> None:
        self.method = method
        self.path = path
        self.op = op
        self.path_item = path_item
        op_id = op.get("operationId")
        if not isinstance(op_id, str) or not op_id:
            op_id = f"{method}_{re.sub(r'[^A-Za-z0-9]+', '_', path).strip('_') or 'root'}"
        self.op_id = op_id
        tags = op.get("tags")
        self.tag = str(tags[0]) if isinstance(tags, list) and tags else "default"
        self.anchor = "op-" + _slug(op_id)
        self.params: list[dict] = []


class _Renderer:
    def __init__(self, document: dict, base_path: str) -> None:
        self.doc = document if isinstance(document, dict) else {}
        bp = (base_path or "").strip()
        if bp and not bp.startswith("/"):
            bp = "/" + bp
        self.base_path = bp.rstrip("/")
        comps = self.doc.get("components")
        self.components = comps if isinstance(comps, dict) else {}
        schemas = self.components.get("schemas")
        self.schemas = schemas if isinstance(schemas, dict) else {}
        self.used_ids: set[str] = set()
        self.ops = self._collect_operations()
        self.common_headers = self._common_headers()
        self.shared_headers = self._shared_headers()

    # ---------------------------------------------------------------- references

    def _lookup(self, ref: str) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return None
        node: Any = self.doc
        for raw in ref[2:].split("/"):
            key = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                return None
        return node

    def deref(self, obj: Any, limit: int = 20) -> Any:
        """Follow ``$ref`` chains; sibling keys of a ``$ref`` (3.1) override the target's."""
        seen = 0
        while isinstance(obj, dict) and "$ref" in obj and seen < limit:
            target = self._lookup(obj["$ref"])
            if not isinstance(target, dict):
                return {k: v for k, v in obj.items() if k != "$ref"}
            siblings = {k: v for k, v in obj.items() if k != "$ref"}
            obj = {**target, **siblings} if siblings else target
            seen += 1
        return obj

    @staticmethod
    def _ref_name(schema: Any) -> str | None:
        if isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
            ref = schema["$ref"]
            if ref.startswith("#/components/schemas/"):
                return ref.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")
        return None

    # ---------------------------------------------------------------- collection

    def _collect_operations(self) -> list[_Operation]:
        ops: list[_Operation] = []
        paths = self.doc.get("paths")
        if not isinstance(paths, dict):
            return ops
        for path, item in paths.items():
            item = self.deref(item)
            if not isinstance(item, dict):
                continue
            shared = [self.deref(p) for p in item.get("parameters") or [] if isinstance(p, (dict,))]
            for method in _HTTP_METHODS:
                op = item.get(method)
                if not isinstance(op, dict):
                    continue
                entry = _Operation(method, str(path), op, item)
                base = entry.anchor
                n = 2
                while entry.anchor in self.used_ids:
                    entry.anchor = f"{base}-{n}"
                    n += 1
                self.used_ids.add(entry.anchor)
                own = [self.deref(p) for p in op.get("parameters") or [] if isinstance(p, dict)]
                merged: dict[tuple[str, str], dict] = {}
                for param in shared + own:
                    if isinstance(param, dict):
                        merged[(str(param.get("name")), str(param.get("in")))] = param
                entry.params = list(merged.values())
                ops.append(entry)
        return ops

    def _tag_order(self) -> list[tuple[str, dict]]:
        declared: list[tuple[str, dict]] = []
        seen: set[str] = set()
        for tag in self.doc.get("tags") or []:
            if isinstance(tag, dict) and tag.get("name") is not None:
                name = str(tag["name"])
                if name not in seen:
                    declared.append((name, tag))
                    seen.add(name)
        used = [op.tag for op in self.ops]
        result = [(name, info) for name, info in declared if name in used]
        for name in used:
            if name not in seen:
                result.append((name, {"name": name}))
                seen.add(name)
        return result

    # ---------------------------------------------------------------- schema helpers

    def split_nullable(self, schema: Any) -> tuple[Any, bool]:
        """Return (schema without the null alternative, nullable?). ``schema`` is dereferenced."""
        if not isinstance(schema, dict):
            return schema, False
        nullable = bool(schema.get("nullable"))
        typ = schema.get("type")
        if isinstance(typ, list) and "null" in typ:
            rest = [t for t in typ if t != "null"]
            core = dict(schema)
            if not rest:
                return {"type": "null"}, True
            core["type"] = rest[0] if len(rest) == 1 else rest
            return core, True
        for key in ("anyOf", "oneOf"):
            alts = schema.get(key)
            if isinstance(alts, list) and alts:
                non_null = [
                    a
                    for a in alts
                    if not (isinstance(self.deref(a), dict) and self.deref(a).get("type") == "null")
                ]
                if len(non_null) < len(alts):
                    if len(non_null) == 1:
                        extra = {k: v for k, v in schema.items() if k not in (key, "nullable")}
                        core = non_null[0]
                        if extra and isinstance(core, dict):
                            merged = dict(self.deref(core))
                            for k, v in extra.items():
                                merged.setdefault(k, v)
                            # keep the ref name visible for labels
                            if self._ref_name(core):
                                merged = {**core, **extra}
                            core = merged
                        return core, True
                    core = dict(schema)
                    core[key] = non_null
                    return core, True
        return schema, nullable

    def merged_all_of(self, schema: dict, depth: int = 0) -> dict:
        if not isinstance(schema, dict) or "allOf" not in schema or depth > 8:
            return schema
        result: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        props: dict[str, Any] = {}
        required: list[str] = []
        for part in schema.get("allOf") or []:
            part = self.merged_all_of(self.deref(part), depth + 1)
            if not isinstance(part, dict):
                continue
            props.update(part.get("properties") or {})
            required.extend(part.get("required") or [])
            for k, v in part.items():
                if k not in ("properties", "required"):
                    result.setdefault(k, v)
        props.update(schema.get("properties") or {})
        required.extend(schema.get("required") or [])
        if props:
            result["properties"] = props
            result.setdefault("type", "object")
        if required:
            result["required"] = list(dict.fromkeys(required))
        return result

    def type_label(self, schema: Any, depth: int = 0) -> str:
        """A short HTML type label (``string (uuid) | null``, ``array of <Enquiry>`` …)."""
        if depth > 6:
            return "…"
        if schema is True or schema == {}:
            return "any"
        if not isinstance(schema, dict):
            return "any"
        name = self._ref_name(schema)
        resolved = self.deref(schema)
        core, nullable = self.split_nullable(resolved)
        null = ' <span class="null">| null</span>' if nullable else ""
        if name and core is resolved:
            return self._schema_link(name) + null
        if core is not resolved and self._ref_name(core):
            return self._schema_link(self._ref_name(core) or "") + null
        core = self.deref(core)
        if not isinstance(core, dict):
            return "any" + null
        core = self.merged_all_of(core)
        if "const" in core:
            literal = _json_literal(core["const"])
            if isinstance(core["const"], (dict, list)) or len(literal) > 40:
                kind = {dict: "object", list: "array"}.get(type(core["const"]), "value")
                return f"constant {kind}" + null
            return f"<code>{_esc(literal)}</code>" + null
        for key, word in (("oneOf", "one of"), ("anyOf", "any of")):
            alts = core.get(key)
            if isinstance(alts, list) and alts:
                labels = [self.type_label(a, depth + 1) for a in alts]
                if len(labels) == 1:
                    return labels[0] + null
                return f"{word}: " + ' <span class="sep">|</span> '.join(labels) + null
        typ = core.get("type")
        if isinstance(typ, list):
            label = " | ".join(_esc(t) for t in typ)
        elif typ == "array" or (typ is None and "items" in core):
            items = core.get("items")
            label = "array of " + (self.type_label(items, depth + 1) if items is not None else "any")
        elif typ == "object" or (typ is None and ("properties" in core or "additionalProperties" in core)):
            extra = core.get("additionalProperties")
            if not core.get("properties") and isinstance(extra, dict) and extra:
                label = "map of string → " + self.type_label(extra, depth + 1)
            else:
                label = "object"
        elif typ:
            label = _esc(typ)
        elif "enum" in core:
            label = "enum"
        else:
            label = "any"
        fmt = core.get("format")
        if fmt and isinstance(typ, (str, list)):
            label += f' <span class="fmt">({_esc(fmt)})</span>'
        return label + null

    def _schema_link(self, name: str) -> str:
        if name in self.schemas:
            return f'<a class="tref" href="#schema-{_esc(_slug(name))}">{_esc(name)}</a>'
        return _esc(name)

    def constraints(self, schema: Any, *, include_default: bool = True) -> list[str]:
        """HTML fragments describing validation keywords of a (property) schema."""
        if not isinstance(schema, dict):
            return []
        resolved = self.deref(schema)
        if not isinstance(resolved, dict):
            return []
        core, _nullable = self.split_nullable(resolved)
        core = self.deref(core) if isinstance(core, dict) else {}
        if not isinstance(core, dict):
            core = {}
        # constraints on the wrapper (e.g. anyOf + maxLength) and on the core
        src = {**core, **{k: v for k, v in resolved.items() if k not in ("anyOf", "oneOf", "type")}}
        out: list[str] = []
        out.extend(self._constraint_list(src, include_default=include_default))
        items = src.get("items")
        if isinstance(items, dict) and not self._ref_name(items):
            inner = self._constraint_list(self.deref(items), include_default=False)
            out.extend("items " + c for c in inner)
        rule = resolved.get("x-voyagent-rule") or core.get("x-voyagent-rule")
        if rule:
            note = _RULE_NOTES.get(str(rule), "checked by the server after the schema")
            out.append(
                f'<span class="rule" title="x-voyagent-rule: {_esc(rule)}">rule <code>{_esc(rule)}</code>: '
                f"{_esc(note)}</span>"
            )
        return out

    def _constraint_list(self, s: dict, *, include_default: bool) -> list[str]:
        out: list[str] = []
        if not isinstance(s, dict):
            return out
        enum = s.get("enum")
        if isinstance(enum, list) and enum:
            values = ", ".join(f"<code>{_esc(_json_literal(v))}</code>" for v in enum)
            out.append(f"one of: {values}")
        lo, hi = s.get("minLength"), s.get("maxLength")
        if lo is not None and hi is not None:
            out.append(f"length {_esc(lo)}–{_esc(hi)}" if lo != hi else f"length {_esc(lo)}")
        elif lo is not None:
            out.append(f"min length {_esc(lo)}")
        elif hi is not None:
            out.append(f"max length {_esc(hi)}")
        for key, sym in (("minimum", "≥"), ("maximum", "≤")):
            if isinstance(s.get(key), (int, float)) and not isinstance(s.get(key), bool):
                excl = s.get("exclusiveMinimum" if key == "minimum" else "exclusiveMaximum")
                if excl is True:
                    sym = ">" if key == "minimum" else "<"
                out.append(f"{_esc(sym)} {_esc(_fmt_number(s[key]))}")
        for key, sym in (("exclusiveMinimum", ">"), ("exclusiveMaximum", "<")):
            val = s.get(key)
            if isinstance(val, (int, float)) and not isinstance(val, bool):
                out.append(f"{_esc(sym)} {_esc(_fmt_number(val))}")
        for key, sym in (("x-voyagent-minimum", "≥"), ("x-voyagent-exclusive-maximum", "<")):
            if s.get(key) is not None:
                out.append(f"{_esc(sym)} {_esc(_fmt_number(s[key]))}")
        if s.get("multipleOf") is not None:
            out.append(f"multiple of {_esc(_fmt_number(s['multipleOf']))}")
        lo, hi = s.get("minItems"), s.get("maxItems")
        if lo is not None and hi is not None:
            out.append(f"{_esc(lo)}–{_esc(hi)} items")
        elif lo is not None:
            out.append(f"at least {_esc(lo)} item{'s' if lo != 1 else ''}")
        elif hi is not None:
            out.append(f"at most {_esc(hi)} items")
        if s.get("uniqueItems"):
            out.append("unique items")
        lo, hi = s.get("minProperties"), s.get("maxProperties")
        if lo is not None:
            out.append(f"at least {_esc(lo)} properties")
        if hi is not None:
            out.append(f"at most {_esc(hi)} properties")
        if s.get("pattern"):
            out.append(f"pattern <code>{_esc(s['pattern'])}</code>")
        if include_default and "default" in s:
            out.append(f"default <code>{_esc(_json_literal(s['default']))}</code>")
        if s.get("readOnly"):
            out.append("read-only")
        if s.get("writeOnly"):
            out.append("write-only")
        if s.get("deprecated"):
            out.append('<span class="depr">deprecated</span>')
        return out

    # ---------------------------------------------------------------- field tables

    def field_rows(
        self,
        schema: Any,
        prefix: str = "",
        depth: int = 0,
        stack: tuple[str, ...] = (),
        rows: list[tuple[str, str, str, bool, list[str], str]] | None = None,
    ) -> list[tuple[str, str, str, bool, list[str], str]]:
        """Flatten an object schema into (prefix, name, type, required, constraints, description)."""
        if rows is None:
            rows = []
        if depth > 6 or len(rows) > 400:
            return rows
        name = self._ref_name(schema)
        if name:
            if name in stack:
                return rows
            stack = stack + (name,)
        obj = self.deref(schema)
        obj, _ = self.split_nullable(obj)
        inner_name = self._ref_name(obj)
        if inner_name:
            if inner_name in stack:
                return rows
            stack = stack + (inner_name,)
        obj = self.merged_all_of(self.deref(obj))
        if not isinstance(obj, dict):
            return rows
        props = obj.get("properties")
        if not isinstance(props, dict):
            return rows
        required = set(obj.get("required") or [])
        for prop_name, prop in props.items():
            resolved = self.deref(prop)
            desc = ""
            if isinstance(prop, dict) and prop.get("description"):
                desc = prop["description"]
            elif isinstance(resolved, dict) and resolved.get("description"):
                desc = resolved["description"]
            extra_desc = ""
            if isinstance(resolved, dict) and "example" in resolved and not isinstance(
                resolved["example"], (dict, list)
            ):
                extra_desc = f'<span class="ex">Example: <code>{_esc(_json_literal(resolved["example"]))}</code></span>'
            rows.append(
                (
                    prefix,
                    str(prop_name),
                    self.type_label(prop),
                    prop_name in required,
                    self.constraints(prop),
                    (_md(desc, compact=True) + (" " if desc and extra_desc else "") + extra_desc),
                )
            )
            self._descend(prop, f"{prefix}{prop_name}", depth, stack, rows)
        extra = obj.get("additionalProperties")
        if isinstance(extra, dict) and extra and props:
            rows.append((prefix, "*", self.type_label(extra), False, [], "Any other key."))
        return rows

    def _descend(self, prop: Any, path: str, depth: int, stack: tuple[str, ...], rows: list) -> None:
        resolved = self.deref(prop)
        core, _ = self.split_nullable(resolved)
        core_res = self.merged_all_of(self.deref(core))
        if not isinstance(core_res, dict):
            return
        typ = core_res.get("type")
        if isinstance(core_res.get("properties"), dict) and core_res["properties"]:
            self.field_rows(core if self._ref_name(core) else prop if self._ref_name(prop) else core_res,
                            path + ".", depth + 1, stack, rows)
        elif (typ == "array" or "items" in core_res) and isinstance(core_res.get("items"), dict):
            items = core_res["items"]
            items_res = self.merged_all_of(self.deref(self.split_nullable(self.deref(items))[0]))
            if isinstance(items_res, dict) and isinstance(items_res.get("properties"), dict):
                self.field_rows(items, path + "[].", depth + 1, stack, rows)
        elif isinstance(core_res.get("additionalProperties"), dict):
            extra = core_res["additionalProperties"]
            extra_res = self.deref(extra)
            if isinstance(extra_res, dict) and isinstance(extra_res.get("properties"), dict):
                self.field_rows(extra, path + ".*.", depth + 1, stack, rows)

    def field_table(self, schema: Any) -> str:
        rows = self.field_rows(schema)
        if not rows:
            return ""
        out = [
            '<div class="table-wrap"><table class="fields"><thead><tr>'
            "<th>Field</th><th>Type</th><th>Required</th><th>Constraints</th><th>Description</th>"
            "</tr></thead><tbody>"
        ]
        for prefix, name, label, required, cons, desc in rows:
            level = prefix.count(".")
            out.append(
                f'<tr class="lvl{min(level, 4)}"><td class="fname"><code>'
                f'<span class="fp">{_esc(prefix).replace(".", ".<wbr>")}</span>{_esc(name)}</code></td>'
                f'<td class="ftype">{label}</td>'
                f'<td>{"<span class=req>required</span>" if required else "<span class=opt>optional</span>"}</td>'
                f'<td class="cons">{self._cons_html(cons)}</td>'
                f"<td>{desc}</td></tr>"
            )
        out.append("</tbody></table></div>")
        return "".join(out)

    @staticmethod
    def _cons_html(cons: list[str]) -> str:
        if not cons:
            return '<span class="muted">—</span>'
        return "<ul class=\"cl\">" + "".join(f"<li>{c}</li>" for c in cons) + "</ul>"

    def variants(self, schema: Any) -> list[tuple[str, Any]]:
        """For a body that is oneOf/anyOf several object shapes: (title, variant schema) pairs."""
        resolved = self.deref(schema)
        core, _ = self.split_nullable(resolved)
        core = self.deref(core)
        if not isinstance(core, dict):
            return []
        for key in ("oneOf", "anyOf"):
            alts = core.get(key)
            if isinstance(alts, list) and len(alts) > 1:
                result = []
                for idx, alt in enumerate(alts, 1):
                    alt_res = self.deref(alt)
                    title = self._ref_name(alt) or (alt_res.get("title") if isinstance(alt_res, dict) else None)
                    result.append((f"Option {idx}" + (f" — {title}" if title else ""), alt))
                return result
        return []

    def schema_block(self, schema: Any, *, request: bool, label: bool = True) -> str:
        """Type label + description + field table(s) for a body schema."""
        parts: list[str] = []
        resolved = self.deref(schema)
        if label and (self._ref_name(schema) or self.type_label(schema) != "object"):
            parts.append(f'<p class="schema-line">Schema: <span class="ftype">{self.type_label(schema)}</span></p>')
        if isinstance(resolved, dict):
            if resolved.get("description") and self._ref_name(schema) is None:
                parts.append(f'<div class="desc">{_md(resolved["description"])}</div>')
            rule = resolved.get("x-voyagent-rule")
            if rule:
                note = _RULE_NOTES.get(str(rule), "checked by the server after the schema")
                parts.append(f'<p class="note rule">Rule <code>{_esc(rule)}</code>: {_esc(note)}.</p>')
            if (
                request
                and resolved.get("additionalProperties") is False
                and "unknown field" not in str(resolved.get("description") or "").lower()
            ):
                parts.append('<p class="note">Unknown fields are rejected.</p>')
        variants = self.variants(schema)
        if variants:
            for title, alt in variants:
                table = self.field_table(alt)
                parts.append(f'<p class="variant">{_esc(title)}</p>')
                parts.append(table or f'<p class="muted">{self.type_label(alt)}</p>')
        else:
            table = self.field_table(schema)
            if table:
                parts.append(table)
            else:
                cons = self.constraints(schema)
                if cons:
                    parts.append(f'<div class="cons-line">{self._cons_html(cons)}</div>')
        return "".join(parts)

    # ---------------------------------------------------------------- examples

    def example(self, schema: Any, name: str = "", depth: int = 0, stack: tuple[str, ...] = ()) -> Any:
        if depth > 8:
            return None
        ref = self._ref_name(schema)
        if ref:
            if ref in stack:
                return {}
            stack = stack + (ref,)
        s = self.deref(schema)
        if not isinstance(s, dict):
            return None
        if "example" in s:
            return s["example"]
        if isinstance(s.get("examples"), list) and s["examples"]:
            return s["examples"][0]
        if "const" in s:
            return s["const"]
        if "default" in s and s["default"] is not None:
            return s["default"]
        if isinstance(s.get("enum"), list) and s["enum"]:
            non_null = [v for v in s["enum"] if v is not None]
            return non_null[0] if non_null else None
        rule = s.get("x-voyagent-rule")
        if rule == "email":
            return "agent@example.com"
        if rule == "new_password":
            return "correct-horse-battery-42"
        if rule == "name":
            return "Jane Doe" if "name" in name.lower() else "Sunrise Travel"
        if rule == "role":
            return "agent"
        if rule == "decimal":
            return "1250.00"
        core, _nullable = self.split_nullable(s)
        if core is not s:
            return self.example(core, name, depth + 1, stack)
        s = self.merged_all_of(s)
        for key in ("oneOf", "anyOf"):
            if isinstance(s.get(key), list) and s[key]:
                return self.example(s[key][0], name, depth + 1, stack)
        typ = s.get("type")
        if isinstance(typ, list):
            typ = next((t for t in typ if t != "null"), None)
        if typ is None:
            if "properties" in s:
                typ = "object"
            elif "items" in s:
                typ = "array"
        if typ == "object":
            result: dict[str, Any] = {}
            props = s.get("properties")
            if isinstance(props, dict):
                for key, prop in props.items():
                    prop_res = self.deref(prop)
                    if isinstance(prop_res, dict) and prop_res.get("readOnly"):
                        continue
                    result[key] = self.example(prop, str(key), depth + 1, stack)
            extra = s.get("additionalProperties")
            if not result and isinstance(extra, dict) and extra:
                result["key"] = self.example(extra, "key", depth + 1, stack)
            return result
        if typ == "array":
            items = s.get("items")
            item = self.example(items, name, depth + 1, stack) if items is not None else "string"
            count = s.get("minItems") if isinstance(s.get("minItems"), int) else 1
            return [item] * max(1, min(count, 3))
        if typ == "integer":
            return int(self._number_example(s, 1))
        if typ == "number":
            return self._number_example(s, 1)
        if typ == "boolean":
            return True
        if typ == "null":
            return None
        if typ == "string" or typ is None:
            return self._string_example(s, name)
        return None

    @staticmethod
    def _number_example(s: dict, fallback: float) -> Any:
        lo = s.get("minimum")
        if isinstance(lo, (int, float)) and not isinstance(lo, bool):
            return lo if not s.get("exclusiveMinimum") is True else lo + 1
        ex = s.get("exclusiveMinimum")
        if isinstance(ex, (int, float)) and not isinstance(ex, bool):
            return ex + 1
        hi = s.get("maximum")
        if isinstance(hi, (int, float)) and not isinstance(hi, bool) and hi < fallback:
            return hi
        return fallback

    @staticmethod
    def _string_example(s: dict, name: str) -> str:
        fmt = s.get("format")
        lname = name.lower()
        by_format = {
            "uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
            "date-time": "2025-06-01T09:30:00Z",
            "date": "2025-06-01",
            "time": "09:30:00",
            "email": "agent@example.com",
            "uri": "https://example.com/",
            "url": "https://example.com/",
            "ipv4": "192.0.2.1",
            "ipv6": "2001:db8::1",
            "byte": "aGVsbG8=",
            "password": "correct-horse-battery-42",
        }
        value: str | None = by_format.get(str(fmt)) if fmt else None
        if value is None and s.get("pattern"):
            value = _example_from_pattern(str(s["pattern"]))
        if value is None:
            if "email" in lname:
                value = "agent@example.com"
            elif "password" in lname:
                value = "correct-horse-battery-42"
            elif "currency" in lname:
                value = "EUR"
            elif lname.endswith("_name") or lname == "name":
                value = "Jane Doe"
            elif lname.endswith("_id") or lname == "id":
                value = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
            else:
                value = "string"
        lo, hi = s.get("minLength"), s.get("maxLength")
        if isinstance(lo, int) and len(value) < lo:
            value = value + "x" * (lo - len(value))
        if isinstance(hi, int) and hi >= 0 and len(value) > hi:
            value = value[:hi]
        return value

    def media_example(self, media: dict) -> Any:
        if not isinstance(media, dict):
            return None
        if "example" in media:
            return media["example"]
        examples = media.get("examples")
        if isinstance(examples, dict) and examples:
            first = self.deref(next(iter(examples.values())))
            if isinstance(first, dict) and "value" in first:
                return first["value"]
        schema = media.get("schema")
        if schema is None:
            return None
        return self.example(schema)

    # ---------------------------------------------------------------- operation parts

    def access_info(self, op: dict) -> dict[str, Any]:
        access = op.get("x-voyagent-access")
        scope = op.get("x-voyagent-scope")
        security = op.get("security", self.doc.get("security"))
        if access not in _ACCESS_LABELS:
            if not security or any(req == {} for req in security if isinstance(req, dict)):
                access = "public"
            else:
                access = "jwt"
                for req in security or []:
                    if isinstance(req, dict):
                        for scheme_name, scopes in req.items():
                            scheme = self.deref((self.components.get("securitySchemes") or {}).get(scheme_name))
                            if "key" in scheme_name.lower() or (
                                isinstance(scheme, dict) and scheme.get("type") == "apiKey"
                            ):
                                access = "key"
                                if scopes and not scope:
                                    scope = scopes[0]
        buckets = op.get("x-voyagent-buckets")
        if isinstance(buckets, str):
            buckets = [buckets]
        return {
            "access": access,
            "scope": scope,
            "role": op.get("x-voyagent-role"),
            "buckets": [str(b) for b in buckets] if isinstance(buckets, list) else [],
            "idempotent": bool(op.get("x-voyagent-idempotent")),
        }

    def access_html(self, info: dict[str, Any]) -> str:
        chips: list[str] = []
        access = info["access"]
        if access == "public":
            chips.append('<span class="chip acc-public" title="No credential needed">Public</span>')
        elif access == "jwt":
            chips.append(
                '<span class="chip acc-jwt" title="Access JWT only; API keys get 403 api_key_not_allowed">'
                "JWT only</span>"
            )
        else:
            chips.append('<span class="chip acc-key" title="Access JWT or an API key">JWT or API key</span>')
            if info["scope"]:
                chips.append(
                    f'<span class="chip scope" title="Scope an API key needs">scope '
                    f"<code>{_esc(info['scope'])}</code></span>"
                )
        if info["role"]:
            chips.append(
                f'<span class="chip role" title="Role gate (403 forbidden_role)">role '
                f"<code>{_esc(info['role'])}</code></span>"
            )
        buckets = list(info["buckets"])
        if access == "jwt":
            buckets.append("user")
        elif access == "key":
            buckets.append("user / api_key")
        if buckets:
            chips.append(
                '<span class="chip rl" title="Rate-limit buckets">rate limit: '
                + ", ".join(f"<code>{_esc(b)}</code>" for b in buckets)
                + "</span>"
            )
        else:
            chips.append('<span class="chip rl" title="Rate-limit buckets">not rate limited</span>')
        if info["idempotent"]:
            chips.append(
                '<span class="chip idem" title="Retries with the same Idempotency-Key replay the first response">'
                "honours <code>Idempotency-Key</code></span>"
            )
        return '<div class="access">' + "".join(chips) + "</div>"

    def params_html(self, params: list[dict]) -> str:
        if not params:
            return ""
        order = {"path": 0, "query": 1, "header": 2, "cookie": 3}
        params = sorted(params, key=lambda p: order.get(str(p.get("in")), 9))
        out = [
            '<h4>Parameters</h4><div class="table-wrap"><table class="params"><thead><tr>'
            "<th>Name</th><th>In</th><th>Type</th><th>Required</th><th>Default</th>"
            "<th>Constraints</th><th>Description</th></tr></thead><tbody>"
        ]
        for p in params:
            schema = p.get("schema")
            if schema is None and isinstance(p.get("content"), dict) and p["content"]:
                schema = next(iter(p["content"].values())).get("schema")
            schema = schema if isinstance(schema, dict) else {}
            resolved = self.deref(schema)
            default = resolved.get("default") if isinstance(resolved, dict) else None
            has_default = isinstance(resolved, dict) and "default" in resolved
            cons = self.constraints(schema, include_default=False)
            core = self.deref(self.split_nullable(resolved)[0]) if isinstance(resolved, dict) else None
            if p.get("in") == "query" and isinstance(core, dict) and core.get("type") == "array":
                cons.append("repeatable")
            if p.get("deprecated"):
                cons.append('<span class="depr">deprecated</span>')
            required = bool(p.get("required")) or p.get("in") == "path"
            default_html = (
                f"<code>{_esc(_json_literal(default))}</code>" if has_default else '<span class="muted">—</span>'
            )
            fallback = resolved.get("description") if isinstance(resolved, dict) else ""
            desc = _md(p.get("description") or fallback, compact=True)
            if "example" in p and not isinstance(p["example"], (dict, list)):
                desc += f' <span class="ex">Example: <code>{_esc(_json_literal(p["example"]))}</code></span>'
            out.append(
                f'<tr><td class="fname"><code>{_esc(p.get("name"))}</code></td>'
                f'<td><span class="in in-{_esc(_slug(str(p.get("in"))))}">{_esc(p.get("in"))}</span></td>'
                f'<td class="ftype">{self.type_label(schema)}</td>'
                f'<td>{"<span class=req>required</span>" if required else "<span class=opt>optional</span>"}</td>'
                f"<td>{default_html}</td>"
                f'<td class="cons">{self._cons_html(cons)}</td>'
                f"<td>{desc}</td></tr>"
            )
        out.append("</tbody></table></div>")
        return "".join(out)

    def body_html(self, op: dict) -> str:
        body = self.deref(op.get("requestBody"))
        if not isinstance(body, dict):
            return ""
        content = body.get("content") if isinstance(body.get("content"), dict) else {}
        required = bool(body.get("required"))
        out = ["<h4>Request body</h4>"]
        if body.get("description"):
            out.append(f'<div class="desc">{_md(body["description"])}</div>')
        if not content:
            out.append(f'<p class="media">{"required" if required else "optional"}</p>')
        for ctype, media in content.items():
            media = media if isinstance(media, dict) else {}
            out.append(
                f'<p class="media"><code>{_esc(ctype)}</code> · '
                f'{"<span class=req>required</span>" if required else "<span class=opt>optional</span>"}</p>'
            )
            schema = media.get("schema")
            if isinstance(schema, dict):
                out.append(self.schema_block(schema, request=True))
            example = self.media_example(media)
            if example is not None and "json" in ctype:
                out.append(self.example_block(example, "Example request body", open_=True))
        return "".join(out)

    def example_block(self, value: Any, title: str, *, open_: bool) -> str:
        try:
            text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = str(value)
        return (
            f'<details class="example"{" open" if open_ else ""}><summary>{_esc(title)}</summary>'
            f'<div class="pre-wrap"><button type="button" class="copy" hidden>Copy</button>'
            f'<pre><code>{_esc(text)}</code></pre></div></details>'
        )

    def _response_headers(self, resp: dict) -> dict[str, dict]:
        headers = resp.get("headers") if isinstance(resp.get("headers"), dict) else {}
        result: dict[str, dict] = {}
        for name, header in headers.items():
            header = self.deref(header)
            result[str(name)] = header if isinstance(header, dict) else {}
        return result

    def _explicit_example(self, media: dict) -> Any:
        if "example" in media:
            return media["example"]
        examples = media.get("examples")
        if isinstance(examples, dict) and examples:
            first = self.deref(next(iter(examples.values())))
            if isinstance(first, dict) and "value" in first:
                return first["value"]
        schema = self.deref(media.get("schema"))
        if isinstance(schema, dict) and "example" in schema:
            return schema["example"]
        return None

    def headers_table(self, rows: list[tuple[str, dict, list[str]]], total: int, *, brief: bool = True) -> str:
        out = [
            '<div class="table-wrap"><table class="headers"><thead><tr><th>Header</th><th>Type</th>'
            "<th>Sent with</th><th>Description</th></tr></thead><tbody>"
        ]
        for name, header, statuses in rows:
            schema = header.get("schema")
            label = self.type_label(schema) if isinstance(schema, dict) else '<span class="muted">—</span>'
            if total and len(statuses) == total:
                sent = "every response"
            else:
                sent = " ".join(
                    f'<span class="status s{_esc(st[:1]) if st[:1] in "12345" else "d"}">{_esc(st)}</span>'
                    for st in statuses
                )
            if brief and name.lower() in self.shared_headers:
                desc = f'<a href="#hdr-{_esc(_slug(name.lower()))}">see common headers</a>'
                name_html = f'<a href="#hdr-{_esc(_slug(name.lower()))}"><code>{_esc(name)}</code></a>'
            else:
                desc = _md(header.get("description") or "", compact=True)
                name_html = f"<code>{_esc(name)}</code>"
            row_id = "" if brief else f' id="hdr-{_esc(_slug(name.lower()))}"'
            out.append(
                f'<tr{row_id}><td class="fname">{name_html}</td><td class="ftype">{label}</td>'
                f"<td>{sent}</td><td>{desc}</td></tr>"
            )
        out.append("</tbody></table></div>")
        return "".join(out)

    def responses_html(self, op: dict) -> str:
        responses = op.get("responses")
        if not isinstance(responses, dict) or not responses:
            return ""
        out = [
            '<h4>Responses</h4><div class="table-wrap"><table class="responses"><thead><tr>'
            "<th>Status</th><th>Description</th><th>Body</th></tr></thead><tbody>"
        ]
        details: list[str] = []
        header_rows: dict[str, tuple[dict, list[str]]] = {}
        count = 0
        for status, resp in responses.items():
            ref_name = None
            if isinstance(resp, dict) and isinstance(resp.get("$ref"), str):
                ref_name = resp["$ref"].rsplit("/", 1)[-1]
            resp = self.deref(resp)
            if not isinstance(resp, dict):
                continue
            count += 1
            status_s = str(status)
            cls = "s" + (status_s[0] if status_s[:1] in "12345" else "d")
            content = resp.get("content") if isinstance(resp.get("content"), dict) else {}
            bodies = []
            for ctype, media in content.items():
                media = media if isinstance(media, dict) else {}
                label = self.type_label(media.get("schema")) if media.get("schema") is not None else ""
                bodies.append(f"<code>{_esc(ctype)}</code>" + (f" {label}" if label else ""))
                if not status_s.startswith("2"):
                    ex = self._explicit_example(media)
                    if ex is not None:
                        bodies.append(f'<span class="ex">e.g. <code>{_esc(_json_literal(ex))}</code></span>')
            for hname, header in self._response_headers(resp).items():
                if hname.lower() in self.common_headers:
                    continue
                header_rows.setdefault(hname, (header, []))[1].append(status_s)
            desc = _md(resp.get("description") or "", compact=True)
            if ref_name:
                desc += f' <span class="muted refname">({_esc(ref_name)})</span>'
            out.append(
                f'<tr><td><span class="status {cls}">{_esc(status_s)}</span></td><td>{desc}</td>'
                f'<td>{"".join(f"<div>{b}</div>" for b in bodies) or "<span class=muted>—</span>"}</td></tr>'
            )
            if status_s.startswith("2"):
                for ctype, media in content.items():
                    media = media if isinstance(media, dict) else {}
                    schema = media.get("schema")
                    if not isinstance(schema, dict):
                        continue
                    block = self.field_table(schema)
                    variants = self.variants(schema)
                    if not block and not variants:
                        continue
                    details.append(
                        f'<p class="resp-title"><span class="status {cls}">{_esc(status_s)}</span> '
                        f'response body <code>{_esc(ctype)}</code> '
                        f'<span class="ftype">{self.type_label(schema)}</span></p>'
                    )
                    details.append(self.schema_block(schema, request=False, label=False))
                    if "json" in ctype:
                        example = self.media_example(media)
                        if example is not None:
                            details.append(self.example_block(example, "Example response", open_=False))
        out.append("</tbody></table></div>")
        if header_rows:
            out.append('<p class="sub">Response headers</p>')
            out.append(
                self.headers_table([(n, h, st) for n, (h, st) in header_rows.items()], count)
            )
        return "".join(out) + "".join(details)

    def _shared_headers(self) -> dict[str, tuple[str, dict]]:
        """Headers used by at least three operations: described once in the common-headers card."""
        seen: dict[str, tuple[str, dict]] = {}
        uses: dict[str, int] = {}
        for entry in self.ops:
            names: set[str] = set()
            responses = entry.op.get("responses")
            for resp in (responses.values() if isinstance(responses, dict) else []):
                resp = self.deref(resp)
                if isinstance(resp, dict):
                    for name, header in self._response_headers(resp).items():
                        names.add(name.lower())
                        seen.setdefault(name.lower(), (name, header))
            for name in names:
                uses[name] = uses.get(name, 0) + 1
        return {k: v for k, v in seen.items() if uses.get(k, 0) >= 3 and k not in self.common_headers}

    def _common_headers(self) -> dict[str, tuple[str, dict]]:
        """Headers (lower-cased name → (name, header)) present on every response of every operation."""
        common: dict[str, tuple[str, dict]] | None = None
        total = 0
        for entry in self.ops:
            responses = entry.op.get("responses")
            if not isinstance(responses, dict):
                continue
            for resp in responses.values():
                resp = self.deref(resp)
                if not isinstance(resp, dict):
                    continue
                total += 1
                names = {k.lower(): (k, v) for k, v in self._response_headers(resp).items()}
                if common is None:
                    common = names
                else:
                    common = {k: v for k, v in common.items() if k in names}
                if not common:
                    return {}
        return common if common and total >= 2 else {}

    def search_text(self, entry: _Operation, info: dict[str, Any]) -> str:
        bits = [
            entry.method,
            entry.path,
            entry.op_id,
            entry.tag,
            str(entry.op.get("summary") or ""),
            str(info.get("scope") or ""),
            str(info.get("role") or ""),
            info.get("access") or "",
            "api key" if info.get("access") == "key" else "",
        ]
        return " ".join(b for b in bits if b).lower()

    def operation_html(self, entry: _Operation) -> str:
        op = entry.op
        info = self.access_info(op)
        method_u = entry.method.upper()
        summary = op.get("summary") or ""
        deprecated = bool(op.get("deprecated"))
        path_html = re.sub(
            r"\{([^}/]+)\}",
            lambda m: f'<span class="pp">{{{m.group(1)}}}</span>',
            _esc(entry.path),
        )
        parts = [
            f'<section class="op{" deprecated" if deprecated else ""}" id="{_esc(entry.anchor)}" '
            f'data-operation-id="{_esc(entry.op_id)}" data-method="{_esc(method_u)}" '
            f'data-path="{_esc(entry.path)}" data-tag="{_esc(entry.tag)}" '
            f'data-search="{_esc(self.search_text(entry, info))}">',
            '<div class="op-head">'
            f'<span class="m m-{_esc(entry.method)}">{_esc(method_u)}</span>'
            f'<code class="path">{path_html}</code>'
            f'<a class="anchor" href="#{_esc(entry.anchor)}" aria-label="Link to this operation">#</a>'
            "</div>",
            f'<h3>{_esc(summary) or _esc(entry.op_id)}'
            + (' <span class="depr">deprecated</span>' if deprecated else "")
            + "</h3>",
            f'<p class="opid">operationId <code>{_esc(entry.op_id)}</code></p>',
            self.access_html(info),
        ]
        if op.get("description"):
            parts.append(f'<div class="desc">{_md(op["description"])}</div>')
        parts.append(self.params_html(entry.params))
        parts.append(self.body_html(op))
        parts.append(self.responses_html(op))
        parts.append("</section>")
        return "".join(parts)

    # ---------------------------------------------------------------- page parts

    def security_html(self) -> str:
        schemes = self.components.get("securitySchemes")
        scopes: dict[str, list[_Operation]] = {}
        for entry in self.ops:
            info = self.access_info(entry.op)
            if info["scope"]:
                scopes.setdefault(str(info["scope"]), []).append(entry)
        out = ['<div class="card" id="authentication"><h2>Authentication</h2>']
        out.append(
            '<p>Protected operations read <code>Authorization: Bearer &lt;credential&gt;</code>. '
            "Each operation states its access rule:</p><ul>"
            '<li><span class="chip acc-public">Public</span> no credential needed.</li>'
            '<li><span class="chip acc-jwt">JWT only</span> an access JWT; API keys are refused with '
            "<code>403 api_key_not_allowed</code>.</li>"
            '<li><span class="chip acc-key">JWT or API key</span> an access JWT, or a '
            "<code>vy_…</code> API key holding the operation’s <span class=\"chip scope\">scope</span> "
            "(else <code>403 insufficient_scope</code>).</li>"
            '<li><span class="chip role">role</span> an additional role gate '
            "(<code>403 forbidden_role</code>).</li></ul>"
        )
        if isinstance(schemes, dict) and schemes:
            out.append('<div class="schemes">')
            for name, scheme in schemes.items():
                scheme = self.deref(scheme)
                if not isinstance(scheme, dict):
                    continue
                kind = str(scheme.get("type") or "")
                detail = kind
                if kind == "http":
                    detail = f"HTTP {scheme.get('scheme', '')}".strip()
                    if scheme.get("bearerFormat"):
                        detail += f" ({scheme['bearerFormat']})"
                elif kind == "apiKey":
                    detail = f"API key in {scheme.get('in', '')} {scheme.get('name', '')}".strip()
                out.append(
                    f'<div class="scheme"><p class="scheme-name"><code>{_esc(name)}</code> '
                    f'<span class="muted">{_esc(detail)}</span></p>'
                    f'<div class="desc">{_md(scheme.get("description") or "")}</div></div>'
                )
            out.append("</div>")
        if scopes:
            out.append(
                '<h3 id="scopes">API key scopes</h3><div class="table-wrap"><table class="scopes">'
                "<thead><tr><th>Scope</th><th>Operations</th></tr></thead><tbody>"
            )
            for scope in sorted(scopes):
                links = " ".join(
                    f'<a class="oplink" href="#{_esc(e.anchor)}"><span class="m m-{_esc(e.method)}">'
                    f"{_esc(e.method.upper())}</span> {_esc(e.path)}</a>"
                    for e in scopes[scope]
                )
                out.append(f"<tr><td><code>{_esc(scope)}</code></td><td>{links}</td></tr>")
            out.append("</tbody></table></div>")
        out.append("</div>")
        return "".join(out)

    def common_headers_html(self) -> str:
        if not self.common_headers and not self.shared_headers:
            return ""
        rows = [(name, header, ["every response"]) for name, header in self.common_headers.values()]
        rows += [(name, header, ["where listed"]) for name, header in self.shared_headers.values()]
        table = self.headers_table(rows, 0, brief=False)
        table = table.replace('<span class="status sd">every response</span>', "every response")
        table = table.replace('<span class="status sd">where listed</span>', "listed per operation")
        return (
            '<div class="card" id="common-headers"><h2>Common response headers</h2>'
            '<p class="muted">Headers sent with every response are not repeated per operation; the others are '
            "listed with the operations that send them.</p>" + table + "</div>"
        )

    def schemas_html(self) -> str:
        if not self.schemas:
            return ""
        out = [
            '<div class="tag-group schemas" id="schemas"><h2>Schemas</h2>'
            '<p class="muted">Shared objects referenced by the operations above.</p>'
        ]
        for name, schema in self.schemas.items():
            resolved = self.deref(schema)
            desc = resolved.get("description") if isinstance(resolved, dict) else None
            table = self.field_table({"$ref": f"#/components/schemas/{name}"}) if isinstance(resolved, dict) else ""
            label = self.type_label(resolved) if isinstance(resolved, dict) else "any"
            cons = self.constraints(resolved) if isinstance(resolved, dict) and not table else []
            const_block = ""
            if isinstance(resolved, dict) and isinstance(resolved.get("const"), (dict, list)):
                const_block = self.example_block(resolved["const"], "Constant value", open_=True)
            teaser = _plain(desc)
            if len(teaser) > 110:
                teaser = teaser[:107].rsplit(" ", 1)[0] + "…"
            out.append(
                f'<details class="schema" id="schema-{_esc(_slug(str(name)))}" '
                f'data-search="{_esc(str(name).lower())}"><summary><code class="sname">{_esc(name)}</code> '
                f'<span class="ftype">{label}</span>'
                + (f' <span class="teaser">{_esc(teaser)}</span>' if teaser else "")
                + "</summary>"
                + (f'<div class="desc">{_md(desc)}</div>' if desc else "")
                + (table or (f'<div class="cons-line">{self._cons_html(cons)}</div>' if cons else ""))
                + const_block
                + "</details>"
            )
        out.append("</div>")
        return "".join(out)

    def render(self) -> str:
        info = self.doc.get("info") if isinstance(self.doc.get("info"), dict) else {}
        title = str(info.get("title") or "API reference")
        version = info.get("version")
        tags = self._tag_order()
        by_tag: dict[str, list[_Operation]] = {}
        for entry in self.ops:
            by_tag.setdefault(entry.tag, []).append(entry)

        # sidebar
        toc: list[str] = []
        for tag, tag_info in tags:
            tag_slug = _slug(tag)
            toc.append(
                f'<li class="toc-tag" data-tag-group="{_esc(tag)}">'
                f'<a class="toc-tag-name" href="#tag-{_esc(tag_slug)}" '
                f'title="{_esc(_plain(tag_info.get("description")))}">'
                f"{_esc(_display_tag(tag, tag_info))}"
                f' <span class="count">{len(by_tag.get(tag, []))}</span></a><ul>'
            )
            for entry in by_tag.get(tag, []):
                info_ = self.access_info(entry.op)
                toc.append(
                    f'<li data-op="{_esc(entry.anchor)}" data-search="{_esc(self.search_text(entry, info_))}">'
                    f'<a href="#{_esc(entry.anchor)}" title="{_esc(entry.op.get("summary") or entry.op_id)}">'
                    f'<span class="m m-{_esc(entry.method)}">{_esc(entry.method.upper())}</span>'
                    f'<span class="tp">{_esc(entry.path).replace("/", "/<wbr>")}</span></a></li>'
                )
            toc.append("</ul></li>")

        main: list[str] = []
        for tag, tag_info in tags:
            tag_slug = _slug(tag)
            main.append(
                f'<div class="tag-group" id="tag-{_esc(tag_slug)}" data-tag-group="{_esc(tag)}">'
                f'<h2 class="tag-title">{_esc(_display_tag(tag, tag_info))}'
                f' <span class="count">{len(by_tag.get(tag, []))}</span></h2>'
            )
            if tag_info.get("description"):
                main.append(f'<div class="desc tag-desc">{_md(tag_info["description"])}</div>')
            for entry in by_tag.get(tag, []):
                main.append(self.operation_html(entry))
            main.append("</div>")

        raw_href = f"{self.base_path}/openapi.json"
        servers = self.doc.get("servers")
        server_html = ""
        if isinstance(servers, list) and servers:
            items = []
            for server in servers:
                if isinstance(server, dict) and server.get("url"):
                    items.append(
                        f"<li><code>{_esc(server['url'])}</code>"
                        + (f" — {_md(server.get('description'), compact=True)}" if server.get("description") else "")
                        + "</li>"
                    )
            if items:
                server_html = '<p class="label">Servers</p><ul class="servers">' + "".join(items) + "</ul>"
        contact = info.get("contact") if isinstance(info.get("contact"), dict) else {}
        license_ = info.get("license") if isinstance(info.get("license"), dict) else {}
        meta_bits = [
            f'<span class="chip ver">version <code>{_esc(version)}</code></span>' if version is not None else "",
            f'<span class="chip ver">OpenAPI <code>{_esc(self.doc.get("openapi"))}</code></span>'
            if self.doc.get("openapi")
            else "",
            f'<span class="chip ver">{len(self.ops)} operations</span>',
            f'<a class="chip raw" href="{_esc(raw_href)}">openapi.json</a>',
        ]
        if contact.get("email"):
            meta_bits.append(f'<span class="chip ver">contact <code>{_esc(contact["email"])}</code></span>')
        if license_.get("name"):
            meta_bits.append(f'<span class="chip ver">license {_esc(license_["name"])}</span>')

        header = (
            '<header class="intro" id="top">'
            f'<h1>{_esc(title)}</h1>'
            + (f'<p class="subtitle">{_esc(info.get("summary"))}</p>' if info.get("summary") else "")
            + '<div class="meta">'
            + "".join(meta_bits)
            + "</div>"
            + (f'<div class="desc">{_md(info.get("description"))}</div>' if info.get("description") else "")
            + server_html
            + "</header>"
        )

        nav = (
            '<nav class="side" aria-label="Operations">'
            f'<div class="brand"><a href="#top">{_esc(title)}</a>'
            + (f' <span class="brand-ver">{_esc(version)}</span>' if version is not None else "")
            + "</div>"
            '<div class="search"><label for="q" class="sr">Search operations</label>'
            '<input id="q" type="search" placeholder="Search operations  ( / )" autocomplete="off" '
            'spellcheck="false" aria-controls="toc-list" aria-describedby="q-count">'
            f'<p class="q-count" id="q-count" aria-live="polite">{len(self.ops)} operations</p></div>'
            '<details class="toc" id="toc" open><summary>Contents</summary>'
            '<ul class="toc-top"><li><a href="#authentication">Authentication</a></li>'
            + (
                '<li><a href="#common-headers">Common headers</a></li>'
                if self.common_headers or self.shared_headers
                else ""
            )
            + ('<li><a href="#schemas">Schemas</a></li>' if self.schemas else "")
            + "</ul>"
            '<ul id="toc-list" class="toc-list">' + "".join(toc) + "</ul></details></nav>"
        )

        body = (
            '<div class="layout">'
            + nav
            + '<main id="main">'
            + header
            + self.security_html()
            + self.common_headers_html()
            + '<p class="no-match" id="no-match" hidden>No operation matches “<span id="no-match-q"></span>”. '
            "Try a path fragment, a method, a tag or a scope.</p>"
            + "".join(main)
            + self.schemas_html()
            + '<footer class="foot">Generated from the OpenAPI document '
            f'(<a href="{_esc(raw_href)}">openapi.json</a>).</footer>'
            + "</main></div>"
        )

        csp = (
            "default-src 'none'; img-src data:; "
            f"style-src '{_STYLE_HASH}'; script-src '{_SCRIPT_HASH}'; "
            "base-uri 'none'; form-action 'none'"
        )
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta http-equiv="Content-Security-Policy" content="{_esc(csp)}">'
            '<meta name="color-scheme" content="light dark">'
            f"<title>{_esc(title)} — API reference</title>"
            f"<style>{_CSS}</style></head><body>"
            '<a class="skip" href="#main">Skip to content</a>'
            + body
            + f"<script>{_JS}</script></body></html>\n"
        )


_CSS = r"""
:root{--bg:#fff;--fg:#1d2330;--muted:#5d6778;--line:#e3e7ee;--soft:#f5f7fa;--card:#fff;--accent:#2456d6;
--code:#f0f2f6;--codefg:#1d2330;--side:#f7f8fb;--get:#1f7a4d;--post:#2456d6;--put:#a35a00;--patch:#7a3fb8;
--delete:#c0392b;--other:#5d6778;--ok:#1f7a4d;--warn:#a35a00;--err:#c0392b;--chip:#eef1f6;--hl:#fff6d6}
@media (prefers-color-scheme:dark){:root{--bg:#12151b;--fg:#e4e8ef;--muted:#9aa4b5;--line:#2a303b;--soft:#191d25;
--card:#161a21;--accent:#7ea6ff;--code:#222834;--codefg:#e4e8ef;--side:#151920;--get:#4cc38a;--post:#7ea6ff;
--put:#f0a54a;--patch:#c39bff;--delete:#ff7b6e;--other:#9aa4b5;--ok:#4cc38a;--warn:#f0a54a;--err:#ff7b6e;
--chip:#232a36;--hl:#3a3418}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;scroll-padding-top:12px}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
code,pre,.path,.tp,.m{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace}
code{font-size:.86em;background:var(--code);color:var(--codefg);padding:.08em .35em;border-radius:4px;
overflow-wrap:anywhere}
pre{margin:0;overflow:auto;background:var(--code);border-radius:8px;padding:12px 14px;font-size:13px;line-height:1.45}
pre code{background:none;padding:0;font-size:inherit;overflow-wrap:normal}
[hidden]{display:none!important}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.skip{position:absolute;left:-999px;top:0}.skip:focus{left:8px;top:8px;z-index:9;background:var(--card);padding:6px 10px}
.layout{display:grid;grid-template-columns:312px minmax(0,1fr);min-height:100vh}
.side{position:sticky;top:0;height:100vh;overflow:auto;background:var(--side);border-right:1px solid var(--line);
padding:16px 14px 40px}
.brand{font-weight:700;font-size:17px;margin:2px 4px 12px}.brand a{color:var(--fg)}
.brand-ver{font-weight:500;font-size:12px;color:var(--muted);background:var(--chip);border-radius:10px;padding:1px 7px;
margin-left:4px;vertical-align:2px}
.search input{width:100%;font:inherit;font-size:14px;padding:8px 11px;border:1px solid var(--line);border-radius:8px;
background:var(--bg);color:var(--fg);outline:none}
.search input:focus{border-color:var(--accent);box-shadow:0 0 0 3px color-mix(in srgb,var(--accent) 22%,transparent)}
.q-count{margin:6px 4px 10px;font-size:12px;color:var(--muted)}
.toc>summary{font-size:12px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);cursor:pointer;
margin:4px 4px 6px;list-style:none}
.toc>summary::before{content:"▸";display:inline-block;width:1.1em}.toc[open]>summary::before{content:"▾"}
.toc>summary::-webkit-details-marker{display:none}
.toc ul{list-style:none;margin:0;padding:0}
.toc-top{margin-bottom:8px!important}.toc-top a{display:block;padding:3px 6px;color:var(--fg);font-size:14px}
.toc-tag{margin:10px 0 2px}
.toc-tag-name{display:flex;justify-content:space-between;padding:3px 6px;font-weight:650;color:var(--fg)}
.count{font-weight:500;font-size:11px;color:var(--muted);background:var(--chip);border-radius:9px;padding:1px 7px}
.toc-tag li a{display:flex;gap:8px;align-items:baseline;padding:3px 6px;border-radius:6px;color:var(--fg);
font-size:13px;line-height:1.35}
.toc-tag li a:hover,.toc-tag li a.active{background:var(--chip);text-decoration:none}
.tp{overflow-wrap:break-word;min-width:0;font-size:12px}
.m{display:inline-block;flex:none;min-width:52px;text-align:center;font-size:10.5px;font-weight:700;letter-spacing:.03em;
color:#fff;background:var(--other);border-radius:4px;padding:2px 5px;line-height:1.4}
.m-get{background:var(--get)}.m-post{background:var(--post)}.m-put{background:var(--put)}
.m-patch{background:var(--patch)}.m-delete{background:var(--delete)}
@media (prefers-color-scheme:dark){.m{color:#0d1016}}
main{min-width:0;padding:28px 40px 80px;max-width:1180px}
.intro h1{margin:0 0 6px;font-size:30px;line-height:1.2}
.subtitle{margin:0 0 10px;color:var(--muted);font-size:17px}
.meta{display:flex;flex-wrap:wrap;gap:6px;margin:10px 0 14px}
.chip{display:inline-flex;align-items:center;gap:4px;font-size:12.5px;background:var(--chip);color:var(--fg);
border-radius:999px;padding:2px 10px;line-height:1.6;white-space:nowrap}
.chip code{background:none;padding:0}
a.chip.raw{background:var(--accent);color:var(--bg);font-weight:600}
.acc-public{background:color-mix(in srgb,var(--ok) 16%,var(--bg));color:var(--ok);font-weight:600}
.acc-jwt{background:color-mix(in srgb,var(--warn) 16%,var(--bg));color:var(--warn);font-weight:600}
.acc-key{background:color-mix(in srgb,var(--post) 16%,var(--bg));color:var(--post);font-weight:600}
.scope,.role{background:color-mix(in srgb,var(--patch) 14%,var(--bg))}
.rule{color:var(--warn)}
.card{border:1px solid var(--line);border-radius:12px;padding:4px 20px 14px;margin:22px 0;background:var(--card)}
.card h2{font-size:20px}
.card ul li{margin:4px 0}
.schemes{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:12px;margin:10px 0}
.scheme{border:1px solid var(--line);border-radius:10px;padding:4px 14px;background:var(--soft)}
.scheme-name{margin:8px 0 2px}
.scheme .desc{font-size:14px}
.oplink{display:inline-flex;gap:6px;align-items:baseline;margin:2px 10px 2px 0;font-family:ui-monospace,Menlo,Consolas,monospace;
font-size:12.5px;color:var(--fg)}
.tag-group{margin-top:34px}
.tag-title{font-size:24px;margin:0 0 4px;padding-bottom:6px;border-bottom:2px solid var(--line);display:flex;
align-items:center;gap:10px}.tag-title .count{font-size:12px}
.tag-desc{color:var(--muted)}
section.op{border:1px solid var(--line);border-radius:12px;padding:16px 20px 10px;margin:18px 0;background:var(--card)}
section.op:target{box-shadow:0 0 0 3px color-mix(in srgb,var(--accent) 35%,transparent)}
section.op.deprecated h3{text-decoration:line-through}
.op-head{display:flex;align-items:center;gap:10px;flex-wrap:wrap}
.op-head .m{font-size:12px;padding:3px 8px;min-width:62px}
.path{font-size:16px;font-weight:600;background:none;padding:0;overflow-wrap:anywhere}
.pp{color:var(--patch)}
.anchor{margin-left:auto;color:var(--muted);font-weight:700;opacity:.5}.anchor:hover{opacity:1;text-decoration:none}
section.op h3{margin:8px 0 0;font-size:19px}
.opid{margin:2px 0 8px;font-size:12.5px;color:var(--muted)}
.opid code{font-size:12px}
.access{display:flex;flex-wrap:wrap;gap:6px;margin:6px 0 10px}
h4{margin:20px 0 8px;font-size:13px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted)}
.desc p{margin:.45em 0}.desc ul,.desc ol{margin:.4em 0;padding-left:1.4em}
.md-h{font-weight:700;font-size:1.07em;margin-top:.9em!important}
.table-wrap{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:6px 0 12px;border:1px solid var(--line);border-radius:8px}
table{border-collapse:collapse;width:100%;font-size:13.5px}
th,td{text-align:left;vertical-align:top;padding:7px 10px;border-bottom:1px solid var(--line)}
th{background:var(--soft);font-weight:600;font-size:12px;color:var(--muted);white-space:nowrap}
tbody tr:last-child td{border-bottom:0}
table.fields,table.params{min-width:800px}table.responses{min-width:560px}table.md{min-width:420px}
td.fname{white-space:nowrap}table.fields td.fname{white-space:normal;min-width:150px}td.fname code{background:none;padding:0;font-weight:600;font-size:13px}
.fp{color:var(--muted);font-weight:400}
.ftype{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;color:var(--post)}
.ftype a.tref{font-weight:600}
.fmt,.null{color:var(--muted)}
.sep{color:var(--muted)}
.req{color:var(--err);font-size:12px;font-weight:600}.opt{color:var(--muted);font-size:12px}
.muted{color:var(--muted)}
ul.cl{list-style:none;margin:0;padding:0;font-size:12.5px}ul.cl li{margin:0 0 2px}
.cons{min-width:140px}
.in{font-size:11.5px;border-radius:4px;padding:1px 6px;background:var(--chip)}
.ex{color:var(--muted);font-size:12.5px}
.depr{color:var(--err);font-size:12px}
.media{margin:4px 0}
.schema-line{margin:6px 0;font-size:14px}
.note{margin:6px 0;font-size:13.5px;color:var(--muted)}.note.rule{color:var(--warn)}
.variant{font-weight:650;margin:12px 0 4px}
.status{display:inline-block;font-weight:700;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;
border-radius:4px;padding:1px 7px;background:var(--chip)}
.s2{color:var(--ok)}.s3{color:var(--post)}.s4{color:var(--warn)}.s5{color:var(--err)}
ul.hl{list-style:none;margin:0;padding:0}ul.hl li{margin:0 0 4px}.hdesc{font-size:12.5px;color:var(--muted)}
.refname{font-size:12px}
.resp-title{margin:16px 0 4px;font-size:14px}
.sub{margin:10px 0 4px;font-size:13px;font-weight:600;color:var(--muted)}
table.headers{min-width:640px}table.headers td:nth-child(3){white-space:nowrap}
table.fields td:last-child,table.params td:last-child,table.headers td:last-child{min-width:280px}
table.responses td:nth-child(2){min-width:220px}
table.scopes td:first-child{white-space:nowrap}table.scopes td:first-child code{overflow-wrap:normal}
details.example{margin:6px 0 12px}
details.example>summary{cursor:pointer;font-size:13px;color:var(--muted);margin-bottom:6px}
.pre-wrap{position:relative}
.copy{position:absolute;right:8px;top:8px;font:inherit;font-size:12px;border:1px solid var(--line);background:var(--card);
color:var(--fg);border-radius:6px;padding:2px 8px;cursor:pointer}
.no-match{margin:24px 0;padding:14px 18px;border:1px dashed var(--line);border-radius:10px;color:var(--muted)}
details.schema{border:1px solid var(--line);border-radius:10px;margin:8px 0;padding:6px 14px;background:var(--card)}
details.schema>summary{cursor:pointer;padding:4px 0}
.sname{font-weight:650;background:none;padding:0;font-size:14px}.teaser{color:var(--muted);font-size:13px;margin-left:6px}
details.schema[open]{padding-bottom:10px}
details.schema:target{box-shadow:0 0 0 3px color-mix(in srgb,var(--accent) 35%,transparent)}
.servers{margin:4px 0;padding-left:1.2em}.label{margin:10px 0 0;font-weight:600;font-size:13px;color:var(--muted)}
.foot{margin-top:48px;color:var(--muted);font-size:13px}
body.searching .intro,body.searching .card,body.searching .tag-desc{display:none}
@media (max-width:900px){
html{scroll-padding-top:64px}
.layout{display:block}
.side{display:contents}
.brand{display:none}
.search{position:sticky;top:0;z-index:5;background:var(--side);padding:8px 12px;border-bottom:1px solid var(--line)}
.q-count{display:none;margin:4px 2px 0}body.searching .q-count{display:block}
.toc{background:var(--side);border-bottom:1px solid var(--line);padding:2px 12px}
.toc>summary{font-size:12.5px;padding:8px 0;margin:0}
.toc[open]{padding-bottom:12px}
main{padding:16px 14px 60px}
.intro h1{font-size:25px}
section.op{padding:12px 12px 6px;border-radius:10px;margin:14px 0}
.path{font-size:14.5px}
section.op h3{font-size:17px}
.card{padding:2px 14px 10px}
.tag-title{font-size:21px}
}
@media (max-width:640px){
table.fields,table.params,table.headers{min-width:0}
table.fields thead,table.params thead,table.headers thead{display:none}
table.fields tr,table.params tr,table.headers tr{display:flex;flex-wrap:wrap;align-items:baseline;gap:3px 10px;
padding:9px 12px;border-bottom:1px solid var(--line)}
table.fields tbody tr:last-child,table.params tbody tr:last-child,table.headers tbody tr:last-child{border-bottom:0}
table.fields td,table.params td,table.headers td{display:block;border:0;padding:0;min-width:0!important}
table.fields td:nth-child(n+4),table.params td:nth-child(n+6),table.headers td:nth-child(n+4){flex-basis:100%}
table.params td:nth-child(5)::before{content:"default ";color:var(--muted);font-size:12px}
table.headers td:nth-child(3)::before{content:"sent with ";color:var(--muted);font-size:12px}
table.fields td:has(>.muted:only-child),table.params td:has(>.muted:only-child),
table.headers td:has(>.muted:only-child){display:none}
ul.cl{display:flex;flex-wrap:wrap;gap:2px 12px}
table.fields td.fname{white-space:normal}
}
@media print{
.side,.search,.anchor,.copy,.skip{display:none!important}
.layout{display:block}main{padding:0;max-width:none}
section.op{break-inside:avoid-page;border-color:#999}
.table-wrap{overflow:visible;border-color:#999}table.fields,table.params,table.responses{min-width:0}
a{color:inherit}
}
"""

_JS = r"""
(function(){
"use strict";
var q=document.getElementById("q");
var ops=[].slice.call(document.querySelectorAll("section[data-operation-id]"));
var items=[].slice.call(document.querySelectorAll("#toc-list li[data-op]"));
var groups=[].slice.call(document.querySelectorAll("[data-tag-group]"));
var schemas=[].slice.call(document.querySelectorAll("details.schema"));
var schemaGroup=document.getElementById("schemas");
var count=document.getElementById("q-count");
var none=document.getElementById("no-match");
var noneQ=document.getElementById("no-match-q");
var toc=document.getElementById("toc");
var total=ops.length;
var counters=[].slice.call(document.querySelectorAll("[data-tag-group] .count"));
function terms(){return q.value.toLowerCase().trim().split(/\s+/).filter(Boolean);}
function hit(el,t){var s=el.getAttribute("data-search")||"";for(var i=0;i<t.length;i++){if(s.indexOf(t[i])<0)return false;}return true;}
function apply(){
  var t=terms(),n=0,shown={};
  ops.forEach(function(s){var ok=hit(s,t);s.hidden=!ok;if(ok){n++;shown[s.id]=1;}});
  items.forEach(function(li){li.hidden=!shown[li.getAttribute("data-op")];});
  groups.forEach(function(g){g.hidden=!g.querySelector("section[data-operation-id]:not([hidden]),li[data-op]:not([hidden])");});
  var sn=0;schemas.forEach(function(d){var ok=hit(d,t);d.hidden=!ok;if(ok)sn++;});
  if(schemaGroup)schemaGroup.hidden=t.length>0&&sn===0;
  document.body.classList.toggle("searching",t.length>0);
  count.textContent=t.length?(n+" of "+total+" operations"):(total+" operations");
  counters.forEach(function(c){var g=c.closest("[data-tag-group]");if(!g)return;
    c.textContent=g.querySelectorAll(c.parentNode.tagName==="A"?"li[data-op]:not([hidden])":"section[data-operation-id]:not([hidden])").length;});
  none.hidden=!(t.length&&n===0);
  noneQ.textContent=q.value.trim();
}
function syncLocation(){try{var v=q.value.trim();var u=location.pathname+(v?"?q="+encodeURIComponent(v):"")+location.hash;
  history.replaceState(null,"",u);}catch(err){}}
q.addEventListener("input",function(){apply();syncLocation();});
q.addEventListener("keydown",function(e){
  if(e.key==="Enter"){var f=ops.filter(function(s){return !s.hidden;})[0];
    if(f){e.preventDefault();location.hash="#"+f.id;f.scrollIntoView();var a=f.querySelector(".anchor");if(a)a.focus({preventScroll:true});}}
  else if(e.key==="Escape"){q.value="";apply();syncLocation();q.blur();}
  else if(e.key==="ArrowDown"){var first=document.querySelector("#toc-list li[data-op]:not([hidden]) a");if(first){e.preventDefault();first.focus();}}
});
document.addEventListener("keydown",function(e){
  if(e.key!=="/"||e.ctrlKey||e.metaKey||e.altKey)return;
  var a=document.activeElement,tag=a&&a.tagName;
  if(a===q||tag==="INPUT"||tag==="TEXTAREA"||tag==="SELECT"||(a&&a.isContentEditable))return;
  e.preventDefault();q.focus();q.select();
});
var narrow=window.matchMedia?window.matchMedia("(max-width: 900px)"):null;
if(toc&&narrow&&narrow.matches)toc.open=false;
if(toc)toc.addEventListener("click",function(e){var a=e.target.closest&&e.target.closest("a");if(a&&narrow&&narrow.matches)toc.open=false;});
function openTarget(){var id=decodeURIComponent(location.hash.slice(1));if(!id)return;var el=document.getElementById(id);
  if(el&&el.tagName==="DETAILS"&&!el.open){el.open=true;el.scrollIntoView();}}
window.addEventListener("hashchange",openTarget);openTarget();
if(navigator.clipboard){[].slice.call(document.querySelectorAll("button.copy")).forEach(function(b){
  b.hidden=false;b.addEventListener("click",function(){var c=b.parentNode.querySelector("pre");
    navigator.clipboard.writeText(c.textContent).then(function(){b.textContent="Copied";setTimeout(function(){b.textContent="Copy";},1200);});});});}
if("IntersectionObserver" in window){var links={};
  items.forEach(function(li){links[li.getAttribute("data-op")]=li.querySelector("a");});
  var current=null;var io=new IntersectionObserver(function(es){es.forEach(function(en){if(en.isIntersecting){
    if(current)current.classList.remove("active");current=links[en.target.id];if(current)current.classList.add("active");}});},
    {rootMargin:"0px 0px -70% 0px"});ops.forEach(function(s){io.observe(s);});}
var reopen=[];
window.addEventListener("beforeprint",function(){[].slice.call(document.querySelectorAll("details.example:not([open])")).forEach(function(d){d.open=true;reopen.push(d);});});
window.addEventListener("afterprint",function(){reopen.forEach(function(d){d.open=false;});reopen=[];});
try{var initial=new URLSearchParams(location.search).get("q");if(initial){q.value=initial;apply();}}catch(err){}
})();
"""


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


_STYLE_HASH = _csp_hash(_CSS)
_SCRIPT_HASH = _csp_hash(_JS)


def content_security_policy() -> str:
    """A CSP header value matching the page (the page also carries it as a meta tag)."""
    return (
        "default-src 'none'; img-src data:; "
        f"style-src '{_STYLE_HASH}'; script-src '{_SCRIPT_HASH}'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def render_docs_html(document: dict, *, base_path: str = "") -> str:
    """Return the complete self-contained HTML page for the OpenAPI document."""
    return _Renderer(document, base_path).render()

