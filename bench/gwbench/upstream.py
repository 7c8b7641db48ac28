"""A fast fake OpenAI-compatible upstream for the gateway benchmark: ``python upstream.py PORT``.

Why not ``tests/fake_upstream.py``: that one is FastAPI + uvicorn, ~0.4 ms of CPU per request;
on 2 cores it would take the CPU the gateways under test need and cap every one of them at its
own rate (TARGETS.md measured the peers against an upstream doing ~16k requests/s). This one is
an asyncio protocol with httptools' parser on uvloop: a canned ``/v1/chat/completions``
answer with an exact ``usage`` (5 words, like the tests' fake), or, for ``"stream": true``,
one SSE event per word, a finish event, a usage event when asked, then ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, cast

import httptools
import orjson
import uvloop

WORDS = ["Merhaba", " from", " the", " fake", " upstream"]
CREATED = 1_700_000_000


def _usage(body: dict[str, Any]) -> dict[str, int]:
    prompt = sum(len(str(m.get("content") or "").split()) + 2 for m in body.get("messages", []))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": len(WORDS),
        "total_tokens": prompt + len(WORDS),
    }


def answer(raw: bytes, n: int) -> bytes:
    """The whole HTTP response for one request body."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        error = orjson.dumps({"error": {"message": "bad json", "type": "invalid_request_error"}})
        return _plain(400, error)
    base = {"id": f"chatcmpl-{n}", "created": CREATED, "model": str(body.get("model"))}
    usage = _usage(body)
    if not body.get("stream"):
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": "".join(WORDS)},
            "finish_reason": "length",
        }
        out = {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
        return _plain(200, orjson.dumps(out))
    events = []
    obj = {**base, "object": "chat.completion.chunk"}
    for i, word in enumerate(WORDS):
        delta = {"content": word, **({"role": "assistant"} if i == 0 else {})}
        events.append({**obj, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    events.append({**obj, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append({**obj, "choices": [], "usage": usage})
    chunks = [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    return head + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def _plain(status: int, body: bytes) -> bytes:
    reason = b"OK" if status == 200 else b"Bad Request"
    return b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        status,
        reason,
        len(body),
        body,
    )


class Upstream(asyncio.Protocol):
    served = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.parser = httptools.HttpRequestParser(self)
        self.body: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(_plain(400, b'{"error":{"message":"bad request"}}'))
            self.transport.close()

    def on_message_begin(self) -> None:
        self.body = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        Upstream.served += 1
        self.transport.write(answer(b"".join(self.body), Upstream.served))


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
