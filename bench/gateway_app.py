#!/usr/bin/env python3
"""The gateway's own CPU per chat request, without an HTTP server: hot routes vs FastAPI's.

One command, from the repository root::

    .venv/bin/python bench/gateway_app.py [--requests 320] [--rounds 20] [--concurrency 16]

Two apps on one home (same tenant with limits and a daily quota, price book, key, default
guard, ledger) call the bench's fast fake upstream (``gwbench/upstream.py``) over real
loopback HTTP: ``create_app()`` (``HotRoutes`` answer the LLM POST routes) and
``create_app(hot_routes=False)`` (FastAPI's routing, dependencies and validation: the
baseline). Each request is driven straight into the ASGI app from this process, so the CPU
measured (this process's, every thread: the ledger writer included) is the gateway's work
from the ASGI call to its response, upstream hop included, and no server's or load
generator's. Rounds alternate between the two apps; on a shared machine the minimum and the
median of the rounds are the figures to read, and the ratio is taken between them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).with_name("gwbench")))
from peers import BODY, prepare_home, upstream


def _scope(key: str) -> dict[str, Any]:
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {key}".encode()),
        (b"content-length", str(len(BODY)).encode()),
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _one(app: Any, scope: dict[str, Any]) -> int:
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.Event().wait()  # no disconnect: the response is complete before this
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app({**scope, "state": {}}, receive, send)
    return status


async def _round(app: Any, scope: dict[str, Any], requests: int, concurrency: int) -> float:
    """CPU ms per request of one round of ``requests`` at ``concurrency``."""

    async def worker(n: int) -> None:
        for _ in range(n):
            status = await _one(app, scope)
            if status != 200:
                raise RuntimeError(f"HTTP {status}")

    per = requests // concurrency
    c0 = time.process_time()
    await asyncio.gather(*(worker(per) for _ in range(concurrency)))
    return (time.process_time() - c0) * 1000 / (per * concurrency)


async def _measure(key: str, args: argparse.Namespace) -> dict[str, list[float]]:
    from paramstack.gateway.app import create_app

    scope = _scope(key)
    apps = {"hot routes": create_app(), "FastAPI routes": create_app(hot_routes=False)}
    cpu: dict[str, list[float]] = {name: [] for name in apps}
    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
            await _round(app, scope, 4 * args.concurrency, args.concurrency)  # warm
        for _ in range(args.rounds):
            for name, app in apps.items():
                cpu[name].append(await _round(app, scope, args.requests, args.concurrency))
    return cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--requests", type=int, default=320, help="requests per round")
    parser.add_argument("--rounds", type=int, default=20, help="rounds per app")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="paramstack-gwapp-") as tmp:
        work = Path(tmp)
        with upstream(work) as direct:
            env, key = prepare_home(work / "home", f"http://127.0.0.1:{direct.port}/v1")
            for name in ("PARAMSTACK_HOME", "PARAMSTACK_LLM_MODELS_FILE"):
                os.environ[name] = env[name]
            cpu = uvloop.run(_measure(key, args))
    print(f"load average at the end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    print(f"{'app':<16} {'min':>7} {'median':>7}  CPU ms per chat request")
    for name, values in cpu.items():
        print(f"{name:<16} {min(values):>7.3f} {statistics.median(values):>7.3f}")
    hot, base = cpu["hot routes"], cpu["FastAPI routes"]
    print(
        f"hot ÷ FastAPI: min {min(hot) / min(base):.2f}, "
        f"median {statistics.median(hot) / statistics.median(base):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
