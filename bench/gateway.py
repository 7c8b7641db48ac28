#!/usr/bin/env python3
"""Added latency of the LLM gateway over calling its upstream directly (a skeleton).

One command, from the repository root::

    .venv/bin/python bench/gateway.py [--requests N] [--concurrency 1 16]

All on 127.0.0.1, each server in its own process:
1. the fake OpenAI-compatible upstream of the tests (``tests/fake_upstream.py``);
2. a fresh ``PARAMSTACK_HOME``: schema, a tenant with rate limits and a daily token quota
   high enough never to refuse (so the limiter runs on every request), a price, an API key;
3. ``paramstack serve`` with that home and a model table routing ``bench-chat`` upstream.
Then, per concurrency, the same small non-streaming chat body ``--requests`` times straight to
the upstream and through the gateway (key auth, limits, quota reservation, ledger all on),
with pre-encoded HTTP/1.1 keep-alive requests on asyncio streams (the client's own cost is
tiny and the same for both). Prints p50/p99, req/s, and added latency = gateway - direct.
Then the median time to the first streamed chunk at concurrency 1, direct and through.
Not done yet: CPU per request, LiteLLM and Portkey in the same run (see TARGETS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
CHAT = {"model": "bench-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
BODY = orjson.dumps(CHAT)
STREAM_BODY = orjson.dumps({**CHAT, "stream": True, "stream_options": {"include_usage": True}})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], port: int) -> Iterator[None]:
    proc = subprocess.Popen(args, cwd=ROOT, env=env)
    try:
        wait_for(port)
        yield
    finally:
        proc.terminate()
        proc.wait(30)


def prepare_home(home: Path, upstream_url: str) -> tuple[dict[str, str], str]:
    from decimal import Decimal

    from paramstack.config import Settings
    from paramstack.registry import api_keys, tenants
    from paramstack.registry.api_keys import KeySpec
    from paramstack.registry.key_material import resolve_pepper
    from paramstack.registry.tenants import TenantSpec
    from paramstack.store import migrate
    from paramstack.store.engine import make_engine, session_factory, transaction

    models = home / "models.yaml"
    home.mkdir(parents=True, exist_ok=True)
    models.write_text(
        orjson.dumps(
            {"models": [{"name": "bench-chat", "base_url": upstream_url, "upstream_model": "m"}]}
        ).decode()  # JSON is YAML
    )
    settings = Settings(home=home)
    engine = make_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    with transaction(session_factory(engine)) as s:
        limits = {"requests_per_second": 1_000_000, "tokens_per_day": 10**12}
        tenants.create_tenant(s, TenantSpec(id="bench", name="Bench", **limits))  # type: ignore[arg-type]
        tenants.set_price(s, "bench", "bench-chat", Decimal("0.5"), Decimal("1.5"))
        key = api_keys.create_key(s, "bench", KeySpec(), resolve_pepper(settings)).plaintext
    engine.dispose()
    env = {**os.environ, "PARAMSTACK_HOME": str(home), "PARAMSTACK_LLM_MODELS_FILE": str(models)}
    return env, key


def request_bytes(port: int, path: str, key: str | None, body: bytes = BODY) -> bytes:
    auth = f"authorization: Bearer {key}\r\n" if key else ""
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {HOST}:{port}\r\ncontent-type: application/json\r\n"
        f"{auth}content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def first_chunk_ms(port: int, raw: bytes, n: int) -> float:
    """Median time to the first streamed event (chunked SSE), one connection, sequential."""
    reader, writer = await asyncio.open_connection(HOST, port)
    times: list[float] = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            seen = False
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200") or b"chunked" not in head.lower():
                raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                piece = await reader.readexactly(size + 2)
                if not seen and piece.startswith(b"data: {"):
                    times.append((time.perf_counter() - t0) * 1000)
                    seen = True
    finally:
        writer.close()
    times.sort()
    return times[len(times) // 2]


async def worker(port: int, raw: bytes, n: int, out: list[float]) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        writer.close()


async def measure(port: int, raw: bytes, requests: int, concurrency: int) -> dict[str, float]:
    await asyncio.gather(*(worker(port, raw, 20, []) for _ in range(concurrency)))  # warmup
    latencies: list[float] = []
    t0 = time.perf_counter()
    per = max(1, requests // concurrency)
    await asyncio.gather(*(worker(port, raw, per, latencies) for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    latencies.sort()
    return {
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "rps": len(latencies) / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    up_port, gw_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="paramstack-bench-") as tmp:
        env, key = prepare_home(Path(tmp) / "home", f"http://{HOST}:{up_port}/v1")
        upstream = [sys.executable, "-m", "tests.fake_upstream", str(up_port)]
        serve = [sys.executable, "-m", "paramstack", "serve", "--port", str(gw_port)]
        with process(upstream, env, up_port), process(serve, env, gw_port):
            direct = request_bytes(up_port, "/v1/chat/completions", None)
            gateway = request_bytes(gw_port, "/v1/chat/completions", key)
            print(f"{'concurrency':>11} {'path':>8} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
            for c in args.concurrency:
                d = asyncio.run(measure(up_port, direct, args.requests, c))
                g = asyncio.run(measure(gw_port, gateway, args.requests, c))
                for name, r in (("direct", d), ("gateway", g)):
                    print(
                        f"{c:>11} {name:>8} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                        f"{r['rps']:>8.0f}"
                    )
                print(
                    f"{c:>11} {'added':>8} {g['p50_ms'] - d['p50_ms']:>8.2f} "
                    f"{g['p99_ms'] - d['p99_ms']:>8.2f}   gateway/direct req/s "
                    f"{g['rps'] / d['rps']:.2f}"
                )
            stream_direct = request_bytes(up_port, "/v1/chat/completions", None, STREAM_BODY)
            stream_gw = request_bytes(gw_port, "/v1/chat/completions", key, STREAM_BODY)
            d_first = asyncio.run(first_chunk_ms(up_port, stream_direct, 500))
            g_first = asyncio.run(first_chunk_ms(gw_port, stream_gw, 500))
            print(
                f"streaming, concurrency 1: first chunk p50 direct {d_first:.2f} ms, "
                f"gateway {g_first:.2f} ms, added {g_first - d_first:.2f} ms"
            )


if __name__ == "__main__":
    main()
