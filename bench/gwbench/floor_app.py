"""The floor of the gateway benchmark: uvicorn + the gateway's upstream hop and nothing else.

A pure ASGI app, served by the same uvicorn (httptools, uvloop) as ``paramstack serve``, that
parses the chat body with orjson, forwards it through ``paramstack.backends.http11`` (the
gateway's own upstream client) to the fake upstream, parses the answer and returns it. No
auth, limits, quota, guard, ledger, metrics or validation: what one request costs before any
of the gateway's own work (``bench/gateway_floor.py`` compares the two in one run).
Upstream base URL from ``FLOOR_UPSTREAM``.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from paramstack.backends.http11 import Http11Client

_client: Http11Client | None = None


async def _lifespan(receive: Any, send: Any) -> None:
    global _client
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            headers = {"content-type": "application/json", "accept": "application/json"}
            _client = Http11Client(
                os.environ["FLOOR_UPSTREAM"], headers, timeout_s=30, connect_timeout_s=5
            )
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["path"] != "/v1/chat/completions" or _client is None:
        answer, status = b'{"status":"ok"}', 200
    else:
        request = orjson.loads(body)
        request["model"] = "m"
        response = await _client.post("chat/completions", orjson.dumps(request))
        answer, status = orjson.dumps(orjson.loads(await response.read())), response.status
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": answer})
