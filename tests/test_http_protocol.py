"""``CoalescingTransport`` joins the writes of one event-loop step into one send, keeps their
order, never holds bytes past the step, and flushes before closing; on a real TCP socket."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from paramstack.gateway.http_protocol import CoalescingTransport


class RecordingTransport:
    """The real transport, with each ``write`` it is given recorded on the way through."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def _pair() -> tuple[RecordingTransport, socket.socket]:
    loop = asyncio.get_running_loop()
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    listener.close()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, accepted)
    return RecordingTransport(transport), client  # type: ignore[arg-type]


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_writes_of_one_step_leave_as_one_send_and_close_flushes() -> None:
    async def scenario() -> tuple[list[bytes], bytes]:
        real, peer = await _pair()
        out = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        out.write(b"HTTP/1.1 200 OK\r\n\r\n")
        out.write(b"body")
        assert real.writes == []  # held until the step ends
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        out.write(b"-next step")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        out.write(b"-at close")
        out.close()  # flushes what is pending, then closes
        writes = list(real.writes)
        received = await asyncio.to_thread(_read_all, peer)
        peer.close()
        return writes, received

    writes, received = asyncio.run(scenario())
    assert writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"-next step", b"-at close"]
    assert received == b"HTTP/1.1 200 OK\r\n\r\nbody-next step-at close"
