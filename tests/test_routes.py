"""The routing fence: every operation of openapi.yaml has a handler, and every handler an operation, or the app
does not start."""

import copy

import pytest
from aiohttp import web

from voyagent import resources
from voyagent.contract import Contract, load_document
from voyagent.routes import collect_handlers, setup_routes


def contract_with(change) -> Contract:
    document = copy.deepcopy(load_document(str(resources.openapi_path())))
    change(document)
    return Contract(document)


def test_every_operation_of_openapi_yaml_is_routed(contract):
    app = web.Application()
    setup_routes(app, contract, "")
    routed = {route.name for route in app.router.routes() if route.name}
    assert routed == set(contract.operations) and len(routed) == 49
    assert set(collect_handlers()) == set(contract.operations)


def test_an_operation_without_a_handler_stops_start_up():
    def add_operation(document):
        document["paths"]["/itineraries/{itinerary_id}/export"] = {"get": {
            "operationId": "export_itinerary", "summary": "Not built", "x-voyagent-access": "public",
            "parameters": [{"name": "itinerary_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "ok"}}}}

    with pytest.raises(RuntimeError, match="operations of openapi.yaml without a handler: export_itinerary"):
        setup_routes(web.Application(), contract_with(add_operation), "")


def test_a_handler_without_an_operation_stops_start_up():
    def drop_operation(document):
        del document["paths"]["/health"]

    with pytest.raises(RuntimeError, match="handlers for operations not in openapi.yaml: health"):
        setup_routes(web.Application(), contract_with(drop_operation), "")
