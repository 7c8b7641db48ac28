#!/usr/bin/env python3
"""CPU per upstream POST: ``paramstack.backends.http11`` against aiohttp's and httpx's clients.

One command, from the repository root::

    .venv/bin/python bench/http_clients.py [--requests 3000] [--rounds 3]

Why: the gateway's upstream hop is on every request, and the hand-written ``http11`` client
exists only because httpx cost 0.8-1.5 ms of CPU per request; a library is preferred at equal
speed. Each client sends the same small chat body to the benchmark's fast fake upstream
(``gwbench/upstream.py``, its own process) over keep-alive connections, at concurrency 1 and
16, and reads the whole JSON answer; the CPU time of this process (all threads) per request is
what the client costs. Rounds alternate the clients so machine noise hits all alike; the
median per client is printed with the ratio to ``http11``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).with_name("gwbench")))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from peers import BODY, upstream

from paramstack.backends.http11 import Http11Client

HEADERS = {"content-type": "application/json", "accept": "application/json"}
Post = Callable[[], Awaitable[bytes]]


async def _drive(post: Post, requests: int, concurrency: int) -> float:
    """CPU ms per request over ``requests`` posts from ``concurrency`` tasks."""

    async def worker(n: int) -> None:
        for _ in range(n):
            if not (await post()).startswith(b"{"):
                raise RuntimeError("not a JSON answer")

    await asyncio.gather(*(worker(20) for _ in range(concurrency)))  # warm the pool
    t0 = time.process_time()
    await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
    return (time.process_time() - t0) * 1000 / (requests // concurrency * concurrency)


async def http11(url: str, requests: int, concurrency: int) -> float:
    client = Http11Client(url, HEADERS, timeout_s=30, connect_timeout_s=5)

    async def post() -> bytes:
        response = await client.post("chat/completions", BODY)
        return await response.read()

    try:
        return await _drive(post, requests, concurrency)
    finally:
        await client.aclose()


async def aiohttp_client(url: str, requests: int, concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=64)
    timeout = aiohttp.ClientTimeout(total=30, connect=5)
    async with aiohttp.ClientSession(
        url + "/",
        connector=connector,
        timeout=timeout,
        headers=HEADERS,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as session:

        async def post() -> bytes:
            async with session.post("chat/completions", data=BODY) as response:
                return await response.read()

        return await _drive(post, requests, concurrency)


async def httpx_client(url: str, requests: int, concurrency: int) -> float:
    async with httpx.AsyncClient(base_url=url + "/", headers=HEADERS, timeout=30) as client:

        async def post() -> bytes:
            return (await client.post("chat/completions", content=BODY)).content

        return await _drive(post, requests, concurrency)


CLIENTS = {"http11": http11, "aiohttp": aiohttp_client, "httpx": httpx_client}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    print(f"aiohttp {aiohttp.__version__}, httpx {httpx.__version__}")
    with tempfile.TemporaryDirectory() as tmp, upstream(Path(tmp)) as up:
        url = f"http://127.0.0.1:{up.port}/v1"
        for c in args.concurrency:
            cpu: dict[str, list[float]] = {name: [] for name in CLIENTS}
            for _ in range(args.rounds):
                for name, run in CLIENTS.items():
                    cpu[name].append(uvloop.run(run(url, args.requests, c)))
            base = statistics.median(cpu["http11"])
            for name, values in cpu.items():
                med = statistics.median(values)
                print(
                    f"c={c:<3} {name:<8} CPU {med:.3f} ms/request (median of {args.rounds}; "
                    f"{med / base:.2f}x http11)  runs: {', '.join(f'{v:.3f}' for v in values)}"
                )


if __name__ == "__main__":
    main()
