"""Meta routes and the Money schema: the OpenAPI document as JSON, the /docs page, BASE_PATH."""

import re

import yaml

from voyagent import resources


async def test_schema_and_its_alias_return_the_checked_in_document(client):
    expected = yaml.safe_load(resources.openapi_path().read_text())
    first = await client.get("/schema")
    second = await client.get("/openapi.json")
    assert first.status == second.status == 200
    assert first.headers["Content-Type"].startswith("application/json")
    assert await first.json() == await second.json() == expected
    assert len(expected["paths"]) > 0 and "/schema" not in expected["paths"]


async def test_money_schema_is_the_data_model_schema(client):
    response = await client.get("/schemas/money")
    assert response.status == 200
    schema = await response.json()
    assert schema["title"] == "Money"
    assert schema["required"] == ["amount", "currency"]
    assert schema["properties"]["currency"]["pattern"] == "^[A-Z]{3}$"
    assert schema["properties"]["amount"]["anyOf"][1]["pattern"] == r"^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$"


async def test_docs_page_is_self_contained_html_listing_every_operation(client):
    """Self-contained: every script and stylesheet comes from the app itself (tests/test_docs_page.py has more)."""
    response = await client.get("/docs")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    html = await response.text()
    assert html.count("<li><code>") == 49
    assert re.findall(r'(?:src|href)="([^"]*)"', html) == [
        "data:,", "/docs/assets/swagger-ui.css", "/docs/assets/docs.css", "/openapi.json", "/openapi.json",
        "/docs/assets/swagger-ui-bundle.js", "/docs/assets/docs.js"]


async def test_base_path_prefixes_every_route(make_client):
    client = await make_client(base_path="/api")
    assert (await client.get("/api/health")).status == 200
    assert (await client.get("/api/schema")).status == 200
    assert (await client.get("/api/docs")).status == 200
    assert (await client.get("/api/internal/metrics")).status == 200
    assert (await client.get("/health")).status == 404
    docs = await (await client.get("/api/docs")).text()
    assert "/api/openapi.json" in docs and 'src="/api/docs/assets/swagger-ui-bundle.js"' in docs
