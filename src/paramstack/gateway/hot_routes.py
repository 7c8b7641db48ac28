"""The LLM POST routes (chat, completions, embeddings) answered by pure ASGI code.

Why: on the bench (one small chat per request through a fast upstream) FastAPI's per-request
machinery — the exception and exit-stack middlewares, route matching over every route, the
``Request`` object, dependency solving and the response wrappers — was about a third of the
gateway's CPU per request (py-spy). These three routes are the gateway's traffic, so
``GatewayApp`` hands them to ``HotRoutes`` before its middleware stack and passes every other
request on unchanged.

The FastAPI routes stay registered: they are the OpenAPI schema, and they are the reference
this code must match (``tests/test_openai_hot_routes.py`` sends the same requests to both and
compares status, headers and bodies). To match them, the steps run in FastAPI's order with
FastAPI's own pieces: the body is read, a JSON content type parsed (a decode error is a 400
before authentication), the bearer key checked (401), then the body validated by the route's
own body field as ``request_body_to_args`` does (same errors, same messages), and errors are
rendered by the same functions as the app's exception handlers (an unexpected exception too:
logged, then 500 in OpenAI's shape).
"""

from __future__ import annotations

import email.message
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi._compat import ModelField, get_missing_field_error
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from pydantic_core import PydanticUndefined
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from paramstack.errors import InvalidInput, ParamstackError, PayloadTooLarge
from paramstack.gateway.auth import authenticated
from paramstack.gateway.client_address import Network, remember_peer
from paramstack.gateway.errors import paramstack_error_response, validation_error_response
from paramstack.gateway.middleware import (
    request_id_from,
    send_too_large,
    start_request,
    too_long,
    with_header,
)
from paramstack.gateway.routes import openai
from paramstack.gateway.serving_chat import OpenAIServing
from paramstack.gateway.tracing import span
from paramstack.registry.key_ring import KeyRing, Principal

log = logging.getLogger(__name__)

# (principal, validated body, raw body, state, headers) -> the response
Handler = Callable[
    [OpenAIServing, Principal, Any, bytes, dict[str, Any], dict[bytes, bytes]], Awaitable[Response]
]

_BODY = ("body",)
_UNPARSABLE = "There was an error parsing the body"  # FastAPI's words


def _request_id(state: dict[str, Any]) -> str:
    return str(state["request_id"])


async def _chat(
    serving: OpenAIServing,
    principal: Principal,
    body: Any,
    raw: bytes,
    state: dict[str, Any],
    headers: dict[bytes, bytes],
) -> Response:
    hint = headers.get(b"x-paramstack-route")
    size, digest = openai.body_facts(raw)
    return await serving.chat(
        principal,
        body,
        size,
        _request_id(state),
        digest,
        hint.decode("latin-1") if hint is not None else None,
    )


async def _completions(
    serving: OpenAIServing,
    principal: Principal,
    body: Any,
    raw: bytes,
    state: dict[str, Any],
    headers: dict[bytes, bytes],
) -> Response:
    size, digest = openai.body_facts(raw)
    return await serving.completions(principal, body, size, _request_id(state), digest)


async def _embeddings(
    serving: OpenAIServing,
    principal: Principal,
    body: Any,
    raw: bytes,
    state: dict[str, Any],
    headers: dict[bytes, bytes],
) -> Response:
    size, digest = openai.body_facts(raw)
    return await serving.embeddings(principal, body, size, _request_id(state), digest)


HANDLERS: dict[str, Handler] = {
    "/v1/chat/completions": _chat,
    "/v1/completions": _completions,
    "/v1/embeddings": _embeddings,
}


def _is_json(content_type: bytes) -> bool:
    """FastAPI's test: ``application/json`` or ``application/*+json``, parameters allowed."""
    if content_type == b"application/json":
        return True
    message = email.message.Message()
    message["content-type"] = content_type.decode("latin-1")
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def _read(receive: Receive, limit: int) -> bytes:
    """The whole body; ``PayloadTooLarge`` as soon as more than ``limit`` bytes arrived (no
    Content-Length to refuse it by)."""
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"request body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class HotRoutes:
    """Answers ``POST`` on a path of ``HANDLERS`` in front of the app's middleware stack.

    ``GatewayApp.__call__`` hands these requests here before Starlette's stack (server-error,
    telemetry and body-limit middlewares, ``RequestContext``, each a coroutine and most a
    ``send`` wrapper: ~10 % of a chat request's CPU), so this does their part itself: the
    request id and start time (``RequestContext``'s, same header last), the body limit, and an
    unexpected exception logged and answered 500 in OpenAI's shape, as the app's handler does.
    """

    def __init__(
        self, fastapi_app: FastAPI, max_body_bytes: int, trusted: Sequence[Network] = ()
    ) -> None:
        self.fastapi_app = fastapi_app
        self.max_body_bytes = max_body_bytes
        self.trusted = trusted
        self._fields = _body_fields(openai.router)  # path -> the FastAPI route's body field

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = HANDLERS[scope["path"]]
        t0 = time.perf_counter()
        headers: dict[bytes, bytes] = {}
        for key, value in scope["headers"]:
            headers.setdefault(key, value)  # the first of a repeated header, as Starlette's get
        supplied = headers.get(b"x-request-id")
        id_header = start_request(scope, request_id_from(supplied) if supplied else None, t0)
        remember_peer(scope, self.trusted)
        if too_long(headers.get(b"content-length"), self.max_body_bytes):
            await send_too_large(with_header(send, id_header), self.max_body_bytes)
            return
        state = self.fastapi_app.state
        try:
            response = await self._answer(handler, scope, receive, headers)
        except ClientDisconnect:  # gone before its body arrived: no one to answer
            return
        except ParamstackError as exc:
            response = paramstack_error_response(exc, state)
        except RequestValidationError as exc:
            response = validation_error_response(exc, state)
        except Exception:
            log.exception("unhandled error on %s", scope["path"])
            response = paramstack_error_response(ParamstackError("internal server error"), state)
        response.raw_headers.append(id_header)
        await response(scope, receive, send)

    async def _answer(
        self, handler: Handler, scope: Scope, receive: Receive, headers: dict[bytes, bytes]
    ) -> Response:
        raw = await _read(receive, self.max_body_bytes)
        body: Any = PydanticUndefined  # no body at all: "Field required", as FastAPI says
        if raw:
            content_type = headers.get(b"content-type")
            body = raw
            if content_type and _is_json(content_type):
                try:
                    body = json.loads(raw)  # as Starlette: orjson turns big ints into floats
                except json.JSONDecodeError as exc:
                    raise RequestValidationError(
                        [
                            {
                                "type": "json_invalid",
                                "loc": ("body", exc.pos),
                                "msg": "JSON decode error",
                                "input": {},
                                "ctx": {"error": exc.msg},
                            }
                        ]
                    ) from exc
                except Exception as exc:  # invalid UTF-8, say: FastAPI's HTTPException(400)
                    raise InvalidInput(_UNPARSABLE, code="http_error") from exc
        state = self.fastapi_app.state
        principal = _authenticate(state.key_ring, headers.get(b"authorization"))
        field = self._fields[scope["path"]]
        # FastAPI's request_body_to_args for one body parameter, without re-deciding per
        # request whether to embed it (the test compares both paths' errors)
        if body is PydanticUndefined:
            raise RequestValidationError([get_missing_field_error(loc=_BODY)])
        value, errors = field.validate(body, {}, loc=_BODY)
        if errors:
            raise RequestValidationError(errors)
        return await handler(state.openai, principal, value, raw, scope["state"], headers)


def _body_fields(router: APIRouter) -> dict[str, ModelField]:
    fields = {
        route.path: route.body_field
        for route in router.routes
        if isinstance(route, APIRoute) and route.path in HANDLERS and route.body_field is not None
    }
    if set(fields) != set(HANDLERS):
        raise RuntimeError(
            f"no FastAPI route with a body for {sorted(set(HANDLERS) - set(fields))}"
        )
    return fields


class GatewayApp(FastAPI):
    """FastAPI whose LLM POST routes are answered by ``hot`` (when set) ahead of the stack."""

    hot: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.hot is not None
            and scope["type"] == "http"
            and scope["path"] in HANDLERS
            and scope["method"] == "POST"
        ):
            await self.hot(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _authenticate(ring: KeyRing, authorization: bytes | None) -> Principal:
    """``HTTPBearer(auto_error=False)`` then ``KeyRing.authenticate``, as ``auth.py`` does."""
    token = None
    if authorization:
        scheme, credentials = get_authorization_scheme_param(authorization.decode("latin-1"))
        if scheme and credentials and scheme.lower() == "bearer":
            token = credentials
    with span("auth"):
        return authenticated(ring, token)
