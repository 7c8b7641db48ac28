"""A tiny deterministic OpenAI-compatible server: the third-party upstream, on loopback.

Real HTTP (FastAPI + uvicorn in a thread), canned answers with an exact ``usage``:
- chat and completions answer ``max_tokens`` words (default 5) from ``WORDS``; the prompt
  costs one token per whitespace-separated word plus 2 per chat message;
- streams send one chunk per word, a finish chunk, then a usage-only chunk when asked for
  ``stream_options.include_usage`` (as OpenAI does), then ``data: [DONE]``;
- embeddings are 4 floats per input, one token per word (or per id for token-id inputs);
- upstream model ``fail-500`` always answers 500, and ``slow`` waits ``SLOW_S`` first (and
  ``SLOW_S`` between streamed words).
- upstream model ``echo`` answers the last user text plus ``ECHO_LEAK`` (fresh PII, as a model
  that leaks would), streamed in 3-character chunks so identifiers cross chunk boundaries.
``hits`` counts requests per upstream model, so tests can see retries and the breaker;
``seen`` keeps every text the upstream received (to prove what the guard let through).
Also runnable alone for benchmarks: ``python -m tests.fake_upstream PORT``.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import Response, StreamingResponse

from tests.loopback import serve_in_thread

WORDS = ["Merhaba", " from", " the", " fake", " upstream", " again", " and", " again"]
SLOW_S = 0.05
MAX_WORDS = 256
CREATED = 1_700_000_000
ECHO_LEAK = " Contact ops@leak.example.org or TCKN 10000000146."


def reply_words(max_tokens: int) -> list[str]:
    """``max_tokens`` words, at most ``MAX_WORDS`` (fuzzed requests ask for billions)."""
    return [WORDS[i % len(WORDS)] for i in range(min(max_tokens, MAX_WORDS))]


def chat_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(len(str(m.get("content") or "").split()) + 2 for m in messages)


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


@dataclass
class Upstream:
    url: str
    hits: Counter[str] = field(default_factory=Counter)
    seen: list[str] = field(default_factory=list)


def received_texts(body: dict[str, Any]) -> list[str]:
    texts = [str(m.get("content")) for m in body.get("messages", [])]
    prompt = body.get("prompt")
    return texts + ([prompt] if isinstance(prompt, str) else [])


def build_app(hits: Counter[str], seen: list[str] | None = None) -> FastAPI:
    app = FastAPI()

    async def gate(body: dict[str, Any]) -> Response | None:
        model = str(body.get("model"))
        hits[model] += 1
        if model == "fail-500":
            return _json({"error": {"message": "boom", "type": "server_error"}}, 500)
        if model == "slow":
            await asyncio.sleep(SLOW_S)
        return None

    async def generate(request: Request, kind: str) -> Response:
        body = orjson.loads(await request.body())
        failed = await gate(body)
        if failed is not None:
            return failed
        if seen is not None:
            seen.extend(received_texts(body))
        words = reply_words(int(body.get("max_tokens") or 5))
        if body["model"] == "echo":
            text = received_texts(body)[-1] + ECHO_LEAK
            words = [text[i : i + 3] for i in range(0, len(text), 3)]
        if kind == "chat":
            prompt = chat_prompt_tokens(body["messages"])
        else:
            prompt = len(str(body["prompt"]).split())
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": len(words),
            "total_tokens": prompt + len(words),
        }
        obj = "chat.completion" if kind == "chat" else "text_completion"
        base = {"id": f"cmpl-{hits.total()}", "created": CREATED, "model": body["model"]}
        if body.get("stream"):
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                _stream(base, kind, words, usage if include else None, body["model"] == "slow"),
                media_type="text/event-stream",
            )
        if kind == "chat":
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(words)},
                "finish_reason": "length",
            }
        else:
            choice = {"index": 0, "text": "".join(words), "finish_reason": "length"}
        return _json({**base, "object": obj, "choices": [choice], "usage": usage})

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        return await generate(request, "chat")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await generate(request, "text")

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        body = orjson.loads(await request.body())
        failed = await gate(body)
        if failed is not None:
            return failed
        raw = body["input"]
        single = isinstance(raw, str) or (bool(raw) and isinstance(raw[0], int))
        inputs = [raw] if single else raw
        data = [
            {"object": "embedding", "index": i, "embedding": [len(item) / 10, 0.5, -0.25, i]}
            for i, item in enumerate(inputs)
        ]
        # token-id inputs count one token per id, text one per word
        tokens = sum(len(item) if isinstance(item, list) else len(item.split()) for item in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return _json({"object": "list", "data": data, "model": body["model"], "usage": usage})

    return app


async def _stream(
    base: dict[str, Any], kind: str, words: list[str], usage: dict[str, int] | None, slow: bool
) -> AsyncIterator[bytes]:
    obj = "chat.completion.chunk" if kind == "chat" else "text_completion"

    def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return b"data: " + orjson.dumps({**base, "object": obj, "choices": choices, **extra})

    for i, word in enumerate(words):
        if slow and i:
            await asyncio.sleep(SLOW_S)
        if kind == "chat":
            delta: dict[str, Any] = {"content": word, **({"role": "assistant"} if i == 0 else {})}
            yield event([{"index": 0, "delta": delta, "finish_reason": None}]) + b"\n\n"
        else:
            yield event([{"index": 0, "text": word, "finish_reason": None}]) + b"\n\n"
    last = {"index": 0, "finish_reason": "length"}
    yield event([{**last, "delta": {}} if kind == "chat" else {**last, "text": ""}]) + b"\n\n"
    if usage is not None:
        yield event([], usage=usage) + b"\n\n"
    yield b"data: [DONE]\n\n"


@contextmanager
def run_upstream(port: int) -> Iterator[Upstream]:
    hits: Counter[str] = Counter()
    seen: list[str] = []
    with serve_in_thread(build_app(hits, seen), port, "fake upstream"):
        yield Upstream(f"http://127.0.0.1:{port}/v1", hits, seen)


if __name__ == "__main__":
    uvicorn.run(build_app(Counter()), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
