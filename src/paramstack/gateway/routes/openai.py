"""OpenAI-compatible routes: thin, they authenticate and hand over to ``app.state.openai``."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from paramstack.errors import InvalidInput
from paramstack.gateway.auth import CurrentPrincipal
from paramstack.gateway.openai_protocol import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ModelList,
)
from paramstack.gateway.schemas import ErrorResponse
from paramstack.gateway.serving_chat import OpenAIServing

router = APIRouter(prefix="/v1", tags=["openai"])

_ERRORS = {
    400: "Malformed request, or the upstream refused it",
    401: "Missing, unknown, revoked or expired API key",
    404: "Unknown model",
    413: "Body larger than the limit",
    429: "Rate limit or daily token quota reached (see Retry-After and x-ratelimit-*)",
    502: "The upstream failed after retries",
    503: "The upstream's circuit breaker is open, or the log queue is full",
}
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in _ERRORS.items()
}
# One server-sent event: ``data`` is a JSON chunk, the final one ``[DONE]``.
SSE_EVENT = {
    "type": "object",
    "properties": {"data": {"type": "string"}, "event": {"type": "string"}},
    "required": ["data"],
}
STREAM = {"text/event-stream": {"schema": SSE_EVENT}}


def _serving(request: Request) -> OpenAIServing:
    serving: OpenAIServing = request.app.state.openai
    return serving


def _request_id(request: Request) -> str:
    return str(request.state.request_id)


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def body_facts(raw: bytes) -> tuple[int, str]:
    """Size (for the token bound) and SHA-256 (for the attestation) of the raw body.

    Refuses a lone surrogate escape (``"\\ud800"``): valid JSON, but no tokenizer, upstream or
    log can encode it. The regex keeps the full check off the hot path for ordinary bodies.
    """
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(json.loads(raw), ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise InvalidInput(
                "the body holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape without its pair)"
            ) from None
    return len(raw), hashlib.sha256(raw).hexdigest()


async def _body(request: Request) -> tuple[int, str]:
    """``body_facts`` of the raw body, which FastAPI has already read and cached."""
    return body_facts(await request.body())


@router.post(
    "/chat/completions",
    summary="Chat completion (SSE when stream is true)",
    response_model=ChatCompletionResponse,
    responses={**ERRORS, 200: {"content": STREAM}},
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, principal: CurrentPrincipal
) -> Response:
    size, digest = await _body(request)
    hint = request.headers.get("x-paramstack-route")  # forces a target of a router model
    return await _serving(request).chat(principal, body, size, _request_id(request), digest, hint)


@router.post(
    "/completions",
    summary="Text completion (SSE when stream is true)",
    response_model=CompletionResponse,
    responses={**ERRORS, 200: {"content": STREAM}},
)
async def completions(
    body: CompletionRequest, request: Request, principal: CurrentPrincipal
) -> Response:
    size, digest = await _body(request)
    return await _serving(request).completions(principal, body, size, _request_id(request), digest)


@router.post(
    "/embeddings", summary="Embeddings", response_model=EmbeddingResponse, responses=ERRORS
)
async def embeddings(
    body: EmbeddingRequest, request: Request, principal: CurrentPrincipal
) -> Response:
    size, digest = await _body(request)
    return await _serving(request).embeddings(principal, body, size, _request_id(request), digest)


@router.get(
    "/models",
    summary="The LLM models this gateway routes",
    response_model=ModelList,
    responses={401: ERRORS[401]},
)
async def list_models(request: Request, principal: CurrentPrincipal) -> ModelList:
    return _serving(request).list_models()
