#!/usr/bin/env python3
"""Our gateway's server CPU per chat request against its floor, in one run.

One command, from the repository root::

    .venv/bin/python bench/gateway_floor.py [--duration 5] [--rounds 2] [--concurrency 16]

The floor (``gwbench/floor_app.py``) is uvicorn plus the gateway's upstream client and JSON
parsing, with none of the gateway's own work; ``paramstack serve`` is the gateway with key
auth, rate limits, a daily quota, the default guard and the ledger on (``gwbench/peers.py``).
Both run against the same fast fake upstream under the same ``wrk`` load; rounds alternate
between them. For each, req/s and the server's user and system CPU per request from its
process counters: on a shared machine the CPU figures are the ones to compare. The difference
is what the gateway's features cost per request; the floor is what no change to them can cut.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).with_name("gwbench")))
from load import Target, _wrk, lua_script, prime
from peers import BODY, STREAM_BODY, free_port, ours, running, upstream

GWBENCH = Path(__file__).with_name("gwbench")


@contextmanager
def floor(upstream_url: str, work: Path) -> Iterator[Target]:
    port = free_port()
    env = {**os.environ, "FLOOR_UPSTREAM": upstream_url}
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join([str(GWBENCH), src, env.get("PYTHONPATH", "")])
    args = [sys.executable, "-m", "uvicorn", "floor_app:app", "--port", str(port)]
    args += ["--log-level", "warning", "--no-access-log"]
    with running(args, env, port, "/healthz", work / "floor.log") as proc:
        yield Target("floor", port, "/v1/chat/completions", {}, BODY, STREAM_BODY, [proc.pid])


def _round(target: Target, script: Path, args: argparse.Namespace) -> tuple[float, float, float]:
    """req/s, user and system CPU ms per request of one measured window."""
    proc = psutil.Process(target.pids[0])
    before = proc.cpu_times()
    result = _wrk(target, script, args.concurrency, args.duration)
    after = proc.cpu_times()
    n = result["requests"] - result["non2xx"]
    if result["non2xx"] or result["socket_errors"]:
        raise RuntimeError(f"{target.name}: {result['non2xx']} non-2xx, errors {result}")
    rps = n / (result["duration_us"] / 1e6)
    return rps, (after.user - before.user) * 1e3 / n, (after.system - before.system) * 1e3 / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    figures: dict[str, list[tuple[float, float, float]]] = {"floor": [], "ours": []}
    with tempfile.TemporaryDirectory(prefix="paramstack-gwfloor-") as tmp:
        work = Path(tmp)
        with upstream(work) as direct:
            url = f"http://127.0.0.1:{direct.port}/v1"
            with ExitStack() as stack:
                targets = {
                    "floor": stack.enter_context(floor(url, work)),
                    "ours": stack.enter_context(ours(url, work, guard=True)),
                }
                scripts = {}
                for name, target in targets.items():
                    prime(target)
                    scripts[name] = stack.enter_context(lua_script(target))
                    _wrk(target, scripts[name], args.concurrency, 2)  # warm
                for _ in range(args.rounds):
                    for name, target in targets.items():
                        figures[name].append(_round(target, scripts[name], args))
    print(f"load average at the end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    print(f"c={args.concurrency}  server       req/s   user ms/req   sys ms/req   CPU ms/req")
    cpu = {}
    for name, rows in figures.items():
        cpu[name] = statistics.median(u + s for _, u, s in rows)
        for rps, user, system in rows:
            total = user + system
            print(f"       {name:<10} {rps:>8.0f} {user:>13.3f} {system:>12.3f} {total:>12.3f}")
    print(
        f"median CPU per request: ours {cpu['ours']:.3f} ms, floor {cpu['floor']:.3f} ms; "
        f"the gateway's own work {cpu['ours'] - cpu['floor']:.3f} ms "
        f"({cpu['ours'] / cpu['floor']:.1f}x the floor)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
