"""The routing fence: every operation of openapi.yaml has a handler, and every handler an operation, or the app
does not start."""

import copy
import functools

import pytest
from aiohttp import web

from voyagent import resources
from voyagent.contract import Contract, load_document
from voyagent.keys import CONTRACT, PIPELINE
from voyagent.middleware import setup_middlewares
from voyagent.routes import collect_handlers, setup_routes


def contract_with(change) -> Contract:
    document = copy.deepcopy(load_document(str(resources.openapi_path())))
    change(document)
    return Contract(document)


def test_every_operation_of_openapi_yaml_is_routed(contract, settings):
    app = web.Application()
    setup_middlewares(app, settings)
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


def test_every_route_runs_through_the_pipeline_and_the_catch_all_comes_last(make_app):
    """The checks, the error bodies, the metrics and the access log live in the pipeline bound to each route: a
    route added around it would answer unchecked."""
    app = make_app()
    routes = list(app.router.routes())
    for route in routes:
        assert isinstance(route.handler, functools.partial) and route.handler.func is app[PIPELINE], route
    plans = [route.handler.keywords["plan"] for route in routes]
    assert [plan.unmatched for plan in plans] == [False] * (len(routes) - 1) + [True]
    assert {plan.operation.operation_id for plan in plans if plan.operation is not None} == set(
        app[CONTRACT].operations)
