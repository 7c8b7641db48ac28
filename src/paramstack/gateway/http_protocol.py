"""uvicorn's httptools protocol with one send per response instead of two.

uvicorn writes a response's status line and headers when the app sends
``http.response.start`` and the body on ``http.response.body``: two ``send`` calls for every
JSON answer. On loopback in a VM each send costs ~18 µs of CPU (the receiver's TCP path and
wake-up run inside the sender's system call; measured on the bench machine), about 5 % of a
chat request. ``CoalescingTransport`` joins the writes made during one event-loop step and
sends them at the end of that step, so a JSON response leaves in one ``send`` and nothing
waits longer than the current step (a stream's headers still go out before its first chunk
is awaited).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """Buffers ``write`` until the loop's next step; everything else is the real transport."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GatewayHttpProtocol(HttpToolsProtocol):
    """``paramstack serve``'s HTTP/1.1 protocol: uvicorn's, writing through the buffer."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]


# How the gateway is served, by `paramstack serve` and by the tests' live servers alike.
SERVER_OPTIONS: dict[str, Any] = {
    "http": GatewayHttpProtocol,
    "access_log": False,
    # X-Forwarded-For is ours to judge (settings.trusted_proxies, gateway/client_address.py);
    # uvicorn's own rewrite would trust any local peer and costs a layer on every request
    "proxy_headers": False,
}
