"""Every error leaves the gateway in OpenAI's shape: {"error": {message, type, code, param}}."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from paramstack.errors import InvalidInput, NotFound, ParamstackError

log = logging.getLogger(__name__)

_LOCATIONS = {"body", "query", "path", "header", "cookie"}
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def error_response(exc: ParamstackError, request: Request, status: int | None = None) -> Response:
    return _render(exc, request.app.state, status)


def _render(exc: ParamstackError, state: State, status: int | None = None) -> Response:
    status = status or exc.http_status
    telemetry = getattr(state, "telemetry", None)
    if telemetry is not None:
        telemetry.errors.labels(str(status), exc.code).inc()
    return Response(
        orjson.dumps(exc.to_openai()), status_code=status, media_type="application/json"
    )


def _from_validation(exc: RequestValidationError) -> InvalidInput:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in _LOCATIONS)
    message = first.get("msg", "invalid request")
    return InvalidInput(f"{where}: {message}" if where else message, param=where or None)


def _allowed(request: Request) -> str:
    """Every method some route serves on this path: Starlette's 405 names only the first
    matching route's, wrong when one path has several (``GET`` and ``POST /v1/admin/tenants``).
    Each method is tried through the public ``matches`` of the routes, so routers included
    in any way are covered."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


def paramstack_error_response(exc: ParamstackError, state: State) -> Response:
    """The app's handler for ``ParamstackError`` (also used by ``hot_routes``)."""
    response = _render(exc, state)
    headers = getattr(exc, "headers", None)  # e.g. Retry-After and x-ratelimit-* on a 429
    if isinstance(headers, dict):
        response.headers.update(headers)
    return response


def validation_error_response(exc: RequestValidationError, state: State) -> Response:
    """The app's handler for request validation errors (also used by ``hot_routes``)."""
    return _render(_from_validation(exc), state)


def install_error_handlers(app: FastAPI) -> None:
    async def on_paramstack(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ParamstackError)
        return paramstack_error_response(exc, request.app.state)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return validation_error_response(exc, request.app.state)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        cls = NotFound if exc.status_code == 404 else InvalidInput
        err = cls(str(exc.detail), code=_HTTP_CODES.get(exc.status_code, "http_error"))
        response = error_response(err, request, exc.status_code)
        response.headers.update(exc.headers or {})  # e.g. the Allow header of a 405
        if exc.status_code == 405:
            response.headers["allow"] = _allowed(request)
        return response

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return error_response(ParamstackError("internal server error"), request)

    app.add_exception_handler(ParamstackError, on_paramstack)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def document_errors_as_400(app: FastAPI) -> None:
    """FastAPI documents validation failures as 422 with its own body; ours are 400 in
    OpenAI's shape (already listed on each route), so drop the 422 entries from the schema."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
