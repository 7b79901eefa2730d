"""The /docs page (README "OpenAPI document and reference page"): Swagger UI served by the app itself.

The page, its viewer document and its assets are checked over HTTP; the browser tests load it in headless
Chromium (skipped when no Chromium is installed, failed instead when ``CI`` is set): every operation is
listed, the filter finds one, try-it-out on ``GET /health`` gets ``200`` from the live server, and the page
asks nothing of any other host.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium
from voyagent.contract import Contract
from voyagent.docs_page import ASSETS, access_notes, render_docs_html, viewer_document

SWAGGER_UI = Path(ASSETS["swagger-ui-bundle.js"]).parent


class _Page(HTMLParser):
    """What the raw HTML references and says: src/href attributes, the inlined document, the no-JS index."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.references: list[str] = []
        self.inlined: list[str] = []
        self.noscript: list[str] = []
        self._in: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.references += [value for name, value in attrs if name in ("src", "href") and value is not None]
        if tag == "script" and values.get("type") == "application/json":
            self._in = "inlined"
        elif tag == "noscript":
            self._in = "noscript"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "noscript"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "inlined":
            self.inlined.append(data)
        elif self._in == "noscript":
            self.noscript.append(data)


def _document_with(contract: Contract, description: str) -> Contract:
    document = copy.deepcopy(contract.document)
    document["paths"]["/health"]["get"]["description"] = description
    return Contract(document)


# ----------------------------------------------------------------------------- the page and its document


def test_each_description_states_the_access_rule_its_extensions_enforce(contract: Contract) -> None:
    for operation in contract.operations.values():
        description = contract.document["paths"][operation.path][operation.method.lower()]["description"]
        notes = access_notes(description)
        assert len(notes) == 2 and description.startswith(notes[0]), operation.operation_id
        access, limit = notes
        assert access.startswith("**Access:** " + {"public": "Public — no credential", "jwt": "JWT only (",
                                                    "key": "JWT ("}[operation.access]), operation.operation_id
        assert ("api_key_not_allowed" in access) == (operation.access == "jwt"), operation.operation_id
        assert (f"API key with scope `{operation.scope}`" in access) == (operation.access == "key")
        if operation.access != "public":
            assert (f"`{operation.role}`" if operation.role else "(any role)") in access, operation.operation_id
        assert ("credential IP" in limit) == ("auth_ip" in operation.buckets), operation.operation_id
        assert ("credential e-mail" in limit) == ("auth_email" in operation.buckets), operation.operation_id
        assert ("sign-up IP" in limit) == ("signup_ip" in operation.buckets), operation.operation_id
        public_limit = ("none (not rate limited)" if not operation.buckets
                        else "sign-up IP" if "signup_ip" in operation.buckets else "credential")
        expected = {"public": public_limit,
                    "jwt": "user.", "key": "principal (the user bucket for a JWT, the key's bucket for an API key)."}
        assert limit.startswith("**Rate limit:** " + expected[operation.access]), operation.operation_id


def test_viewer_document_points_try_it_out_at_base_path_and_leaves_the_served_document_alone(
        contract: Contract) -> None:
    served = contract.json_bytes
    assert viewer_document(contract, "/api")["servers"] == [{"url": "/api", "description": "This server"}]
    assert viewer_document(contract, "")["servers"][0]["url"] == "/"
    assert contract.json_bytes == served
    assert json.loads(served)["servers"] == [{"url": "/", "description": contract.document["servers"][0]["description"]}]


@pytest.mark.parametrize("base_path", ["", "/api"])
def test_page_inlines_the_viewer_document_and_loads_only_its_own_assets(contract: Contract, base_path: str) -> None:
    page = _Page(render_docs_html(contract, base_path=base_path))
    assert json.loads("".join(page.inlined)) == viewer_document(contract, base_path)
    own = {f"{base_path}/docs/assets/{name}" for name in ASSETS} | {f"{base_path}/openapi.json", "data:,"}
    assert set(page.references) == own


def test_raw_html_names_every_operation_without_javascript(contract: Contract) -> None:
    text = " ".join(" ".join(_Page(render_docs_html(contract, base_path="/api")).noscript).split())
    for operation in contract.operations.values():
        assert f"{operation.method} {operation.path}" in text
    tags = [tag["name"] for tag in contract.document["tags"]]
    positions = [text.index(f" {tag} ") if f" {tag} " in text else -1 for tag in tags]
    assert -1 not in positions and positions == sorted(positions)  # grouped in the document's tag order
    assert "Parameters: approval_id (path)" in text
    assert "Access: JWT (agency_admin) or API key with scope audit:read" in text
    assert "Rate limit: credential IP and credential e-mail buckets." in text and "/api/openapi.json" in text


def test_a_description_cannot_close_the_inlined_script(contract: Contract) -> None:
    hostile = "</script><script>alert(1)</script><!--"
    page = render_docs_html(_document_with(contract, hostile), base_path="")
    assert hostile not in page and page.count("<script") == 3
    inlined = json.loads("".join(_Page(page).inlined))
    assert inlined["paths"]["/health"]["get"]["description"].endswith(hostile)


def test_vendored_swagger_ui_is_the_pinned_release_unedited() -> None:
    version = (SWAGGER_UI / "VERSION").read_text().strip()
    for line in (SWAGGER_UI / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((SWAGGER_UI / name).read_bytes()).hexdigest() == digest, name
    assert f'PACKAGE_VERSION:"{version}"' in ASSETS["swagger-ui-bundle.js"].read_text()
    assert (SWAGGER_UI / "LICENSE").exists() and (SWAGGER_UI / "swagger-ui-bundle.js.LICENSE.txt").exists()


# ----------------------------------------------------------------------------- over HTTP


async def test_page_headers_let_only_the_apps_own_scripts_run(client: Any) -> None:
    response = await client.get("/docs")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'" and policy["frame-ancestors"] == "'none'"


@pytest.mark.parametrize("name, content_type", [("swagger-ui-bundle.js", "text/javascript"),
                                                ("swagger-ui.css", "text/css"),
                                                ("docs.js", "text/javascript"), ("docs.css", "text/css")])
async def test_assets_are_served_from_package_data_and_revalidated(client: Any, name: str, content_type: str) -> None:
    response = await client.get(f"/docs/assets/{name}")
    assert response.status == 200
    assert response.headers["Content-Type"].split(";")[0] in (content_type, "application/javascript")
    assert response.headers["Cache-Control"] == "no-cache"
    assert await response.read() == ASSETS[name].read_bytes()
    again = await client.get(f"/docs/assets/{name}", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304


@pytest.mark.parametrize("name", ["LICENSE", "VERSION", "..%2Fapp.py", "swagger-ui-bundle.js.map", "index.html"])
async def test_nothing_else_is_served_under_assets(client: Any, name: str) -> None:
    response = await client.get(f"/docs/assets/{name}")
    assert response.status == 404
    assert await response.json() == {"detail": "Not Found"}


async def test_assets_move_under_base_path(make_client: Any) -> None:
    client = await make_client(base_path="/api")
    assert (await client.get("/api/docs/assets/docs.js")).status == 200
    assert (await client.get("/docs/assets/docs.js")).status == 404


# ----------------------------------------------------------------------------- in Chromium


@pytest.mark.browser
@pytest.mark.parametrize("base_path", ["", "/api"])
async def test_swagger_ui_lists_filters_and_tries_out_against_the_live_server(
        aiohttp_server: Any, make_app: Any, contract: Contract, test_output_dir: Path, base_path: str) -> None:
    from playwright.async_api import expect

    server = await aiohttp_server(make_app(base_path=base_path))
    origin = f"http://{server.host}:{server.port}"
    shots = test_output_dir / "docs"
    suffix = base_path.replace("/", "-")
    needle = "sign-in-totp"
    matching = [op for op in contract.operations.values()
                if needle in " ".join((op.tag, op.method, op.path, op.operation_id)).lower()]
    assert len(matching) == 1
    async with chromium.open_page(width=1280, height=1600) as browser:
        page = browser.page
        await page.goto(f"{origin}{base_path}/docs")
        operations = page.locator(".opblock")
        await expect(operations).to_have_count(len(contract.operations))
        ids = set(await operations.evaluate_all("blocks => blocks.map(block => block.id)"))
        assert ids == {f"operations-{op.tag}-{op.operation_id}" for op in contract.operations.values()}
        await page.screenshot(path=shots / f"desktop{suffix}.png")

        await page.locator(".operation-filter-input").fill(needle)
        await expect(operations).to_have_count(1)
        await expect(operations).to_have_id(f"operations-{matching[0].tag}-{matching[0].operation_id}")
        await page.screenshot(path=shots / f"filtered{suffix}.png")
        await page.locator(".operation-filter-input").fill("")
        await expect(operations).to_have_count(len(contract.operations))

        health = page.locator("#operations-health-health")
        await health.locator(".opblock-summary-control").click()
        await expect(health.locator(".opblock-description")).to_contain_text(
            "Access: Public — no credential")
        await health.locator(".try-out__btn").click()
        await health.locator(".execute").click()
        await expect(health.locator(".live-responses-table td.response-col_status:not(.col_header)")).to_have_text("200")
        await expect(health.locator(".request-url")).to_contain_text(f"{origin}{base_path}/health")
        await expect(health.locator(".curl-command")).to_contain_text("curl -X 'GET'")
        await health.screenshot(path=shots / f"try-it-out{suffix}.png")

        assert browser.errors == []
        assert browser.foreign_requests(origin) == []
        assert {f"{origin}{base_path}/docs/assets/swagger-ui-bundle.js", f"{origin}{base_path}/health"} <= set(
            browser.requests)


@pytest.mark.browser
async def test_page_reads_on_a_phone_and_without_javascript(
        aiohttp_server: Any, make_app: Any, contract: Contract, test_output_dir: Path) -> None:
    server = await aiohttp_server(make_app())
    origin = f"http://{server.host}:{server.port}"
    async with chromium.open_page(width=375, height=1400) as browser:
        await browser.page.goto(f"{origin}/docs")
        await browser.page.locator("#operations-health-health").wait_for()
        await browser.page.screenshot(path=test_output_dir / "docs" / "phone.png")
        assert browser.errors == [] and browser.foreign_requests(origin) == []
    async with chromium.open_page(javascript=False) as browser:
        await browser.page.goto(f"{origin}/docs")
        text = await browser.page.locator(".vy-index").inner_text()
        for operation in contract.operations.values():
            assert re.search(rf"\b{operation.method} {re.escape(operation.path)}(\s|$)", text)
        await browser.page.screenshot(path=test_output_dir / "docs" / "no-javascript.png")
        assert browser.foreign_requests(origin) == []
