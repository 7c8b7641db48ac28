"""A tiny deterministic Anthropic Messages server: the third-party upstream, on loopback.

Real HTTP (FastAPI + uvicorn in a thread) speaking the ``POST /v1/messages`` wire format:
- requests must carry ``x-api-key: API_KEY`` (else 401 ``authentication_error``) and an
  ``anthropic-version`` header, ``max_tokens`` and user/assistant ``messages`` only (else 400
  ``invalid_request_error``), like the real API;
- answers are ``min(max_tokens, len(WORDS))`` words of ``WORDS``, ``stop_reason``
  ``max_tokens`` when cut, else ``end_turn``; ``input_tokens`` is one per word of the system
  prompt and the messages, and ``cache_read_input_tokens`` is ``CACHED`` for model ``cached``;
- streams send message_start, content_block_start, ping, one content_block_delta per word,
  content_block_stop, message_delta (stop_reason, cumulative output_tokens), message_stop;
- model ``overloaded`` always answers 529 ``overloaded_error``, ``bad-request`` 400, ``slow``
  waits ``SLOW_S`` first, and ``stream-error`` streams one word then an ``error`` event.
``hits`` counts requests per model; ``seen`` keeps every request body (to check translation).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import FastAPI, Request
from starlette.responses import Response, StreamingResponse

from tests.loopback import serve_in_thread

API_KEY = "sk-ant-test-0123456789"
WORDS = ["Hello", " from", " the", " fake", " Claude", " upstream"]
SLOW_S = 0.05
CACHED = 3


def _error(status: int, kind: str, message: str) -> Response:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_1"}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def input_tokens(body: dict[str, Any]) -> int:
    texts = [str(body.get("system") or "")] + [str(m["content"]) for m in body["messages"]]
    return sum(len(text.split()) for text in texts)


@dataclass
class Anthropic:
    url: str
    hits: Counter[str] = field(default_factory=Counter)
    seen: list[dict[str, Any]] = field(default_factory=list)


def _invalid(request: Request, body: Any) -> Response | None:
    if request.headers.get("x-api-key") != API_KEY:
        return _error(401, "authentication_error", "invalid x-api-key")
    if not request.headers.get("anthropic-version"):
        return _error(400, "invalid_request_error", "anthropic-version header is required")
    if not isinstance(body, dict) or not isinstance(body.get("max_tokens"), int):
        return _error(400, "invalid_request_error", "max_tokens: Field required")
    messages = body.get("messages")
    if not messages or any(m.get("role") not in ("user", "assistant") for m in messages):
        return _error(400, "invalid_request_error", "messages: roles must be user or assistant")
    return None


def build_app(hits: Counter[str], seen: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        body = orjson.loads(await request.body())
        invalid = _invalid(request, body)
        if invalid is not None:
            return invalid
        model = str(body["model"])
        hits[model] += 1
        seen.append(body)
        if model == "overloaded":
            return _error(529, "overloaded_error", "Overloaded")
        if model == "bad-request":
            return _error(400, "invalid_request_error", "prompt is too long")
        if model == "slow":
            await asyncio.sleep(SLOW_S)
        words = WORDS[: body["max_tokens"]]
        stop = "max_tokens" if len(words) < len(WORDS) else "end_turn"
        usage = {
            "input_tokens": input_tokens(body),
            "output_tokens": len(words),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": CACHED if model == "cached" else 0,
        }
        message = {
            "id": f"msg_{hits.total()}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": "".join(words)}],
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }
        if body.get("stream"):
            return StreamingResponse(_stream(message, words), media_type="text/event-stream")
        return Response(orjson.dumps(message), media_type="application/json")

    return app


def _event(kind: str, **data: Any) -> bytes:
    return f"event: {kind}\ndata: ".encode() + orjson.dumps({"type": kind, **data}) + b"\n\n"


async def _stream(message: dict[str, Any], words: list[str]) -> AsyncIterator[bytes]:
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    yield _event("message_start", message=start)
    yield _event("content_block_start", index=0, content_block={"type": "text", "text": ""})
    yield _event("ping")
    for i, word in enumerate(words):
        yield _event("content_block_delta", index=0, delta={"type": "text_delta", "text": word})
        if message["model"] == "stream-error" and i == 0:
            await asyncio.sleep(0.05)  # the first word reaches the client first
            yield _event("error", error={"type": "overloaded_error", "message": "Overloaded"})
            return
    yield _event("content_block_stop", index=0)
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    yield _event("message_delta", delta=delta, usage={"output_tokens": len(words)})
    yield _event("message_stop")


@contextmanager
def run_anthropic(port: int) -> Iterator[Anthropic]:
    hits: Counter[str] = Counter()
    seen: list[dict[str, Any]] = []
    with serve_in_thread(build_app(hits, seen), port, "fake Anthropic server"):
        yield Anthropic(f"http://127.0.0.1:{port}/v1", hits, seen)
