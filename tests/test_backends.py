"""The backend registry and the circuit breaker, without a network."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from paramstack.backends.circuit import CircuitBreaker, CircuitOpen
from paramstack.backends.http11 import Http11Client, ProtocolError, ReadTimeout
from paramstack.backends.protocol import BackendConfig, backend_names, build_backend
from paramstack.errors import InvalidInput
from paramstack.gateway.model_table import ModelTable


def test_unknown_backend_names_the_valid_ones() -> None:
    assert "openai-compatible" in backend_names()
    with pytest.raises(InvalidInput, match=r"valid: .*openai-compatible") as err:
        build_backend(BackendConfig(kind="nope"))
    assert err.value.code == "unknown_backend"
    with pytest.raises(InvalidInput, match="needs base_url"):
        build_backend(BackendConfig(kind="openai-compatible"))


def test_breaker_opens_then_lets_one_probe_through_after_the_reset() -> None:
    now = [0.0]
    breaker = CircuitBreaker("up", failures=2, reset_s=10, clock=lambda: now[0])
    breaker.record_failure()
    breaker.before_call()  # one failure: still closed
    breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    now[0] = 10.0
    breaker.before_call()  # the probe
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # only one probe at a time
    breaker.record_failure()  # the probe failed: open for another reset period
    assert breaker.state == "open"
    now[0] = 20.0
    breaker.before_call()
    breaker.record_success()
    assert breaker.state == "closed"
    breaker.before_call()


def test_the_shipped_model_table_loads() -> None:
    table = ModelTable.from_file(Path("configs/gateway/models.yaml"))
    assert table.names() == ["smollm2-135m", "minilm-embed"]
    chat = table.resolve("smollm2-135m", "chat")
    assert chat.upstream_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert chat.backend is table.resolve("minilm-embed", "embeddings").backend  # one upstream
    asyncio.run(table.aclose())


def test_http11_retries_a_pooled_connection_the_server_closed() -> None:
    """A server that closes every connection after one answer (as an idle keep-alive timeout
    does): the second request finds its pooled connection dead and goes out on a fresh one."""

    async def run() -> tuple[list[bytes], int]:
        connections = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = Http11Client(f"http://127.0.0.1:{port}/v1", {}, timeout_s=5, connect_timeout_s=1)
        bodies = []
        for payload in (b"first", b"second"):
            response = await client.post("echo", payload)
            bodies.append(await response.read())
            await asyncio.sleep(0.05)  # let the close arrive
        await client.aclose()
        server.close()
        return bodies, connections

    bodies, connections = asyncio.run(run())
    assert bodies == [b"first", b"second"]
    assert connections == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b", ProtocolError),  # cut
        (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", ReadTimeout),  # stalls
        (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP", None),  # whole: pooled
        (b"HTTP/1.1 200 OK\r\ncontent-length: \xc2\xb2\r\n\r\nok", ProtocolError),  # "²" length
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", None),
    ],
)
def test_http11_body_reads_map_failures_and_pool_only_whole_reads(
    answer: bytes, error: type[Exception] | None
) -> None:
    """``read``: a body cut short is a ProtocolError, a stalled one a ReadTimeout, and either
    closes the connection; only a body read to its end returns the connection to the pool."""

    async def run() -> tuple[bytes | type[Exception], int]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
            if error is ProtocolError and b"100" in answer:
                writer.close()
            else:
                await asyncio.sleep(1)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = Http11Client(f"http://127.0.0.1:{port}", {}, timeout_s=0.2, connect_timeout_s=1)
        response = await client.post("x", b"")
        try:
            outcome: bytes | type[Exception] = await response.read()
        except (ProtocolError, ReadTimeout) as exc:
            outcome = type(exc)
        pooled = len(client._idle)
        await client.aclose()
        server.close()
        return outcome, pooled

    outcome, pooled = asyncio.run(run())
    if error is None:
        assert (outcome, pooled) == (b"ok", 1)
    else:
        assert (outcome, pooled) == (error, 0)
