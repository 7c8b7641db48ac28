#!/usr/bin/env python3
"""The LLM gateway against LiteLLM's proxy and Portkey's gateway, in one run.

One command, from the repository root (``make bench-gateway``)::

    .venv/bin/python bench/gateway.py [--duration 5] [--concurrency 1 16 64] [--workers 2]

All on 127.0.0.1, each server in its own process, one after the other against the same fast
fake upstream (``gwbench/upstream.py``), with the same small chat body and the same load
generator (``wrk``, one thread, keep-alive): for each concurrency req/s, p50/p99, errors and
the added latency over calling the upstream directly; the server's CPU time per request from
its process counters; then streams (first-chunk latency and failed streams) at every
concurrency. Prints a table with ours ÷ peer ratios, checks TARGETS.md, and writes
``bench/results/gateway.json``. Peers are installed on first use (pinned, outside our
virtualenv, see ``gwbench/peers.py``); one that fails is reported and the rest still runs.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import math
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import orjson
import psutil

sys.path.insert(0, str(Path(__file__).with_name("gwbench")))
from load import Target, prime, run_point, stream_point
from peers import PeerUnavailable, litellm, ours, portkey, upstream

ROOT = Path(__file__).resolve().parents[1]
PEERS: dict[str, Callable[[str, Path], AbstractContextManager[Target]]] = {
    "ours": ours,
    "ours-guard": functools.partial(ours, guard=True),
    "ours-guard-nocache": functools.partial(ours, guard=True, remember=False),
    "litellm": litellm,
    "portkey": portkey,
}
Result = dict[str, Any]
# our two runs: TARGETS.md's feature set, and the product's default with its guard policy
OURS = {
    "ours": "key auth, rate limits, daily token quota and usage ledger on (TARGETS.md's list; "
    "neither peer has a guard)",
    "ours-guard": "the same with the default guard policy too (PII, injection, toxicity, "
    "copyright on prompt and answer; the bench repeats one prompt, so from session 10 its "
    "verdict is remembered and only the answer is scanned each time)",
    "ours-guard-nocache": "the guard run with verdict_cache 0: every prompt scanned, as a "
    "never-seen prompt is",
}


def measure(target: Target, args: argparse.Namespace) -> Result:
    print(f"== {target.name}", flush=True)
    prime(target)
    points = []
    for c in args.concurrency:
        p = run_point(target, c, args.duration, args.warmup)
        points.append(p.as_dict())
        cpu = f"{p.server_cpu_ms:.3f}" if p.server_cpu_ms is not None else "?"
        print(
            f"   c={c:<3} {p.rps:>8.0f} req/s  p50 {p.p50_ms:7.2f}  p99 {p.p99_ms:7.2f} ms  "
            f"errors {p.errors}  server CPU {cpu} ms/req  wrk CPU {p.client_cpu_ms:.3f} ms/req  "
            f"machine busy {p.machine_busy:.0%}",
            flush=True,
        )
    streams = []
    for c in args.concurrency:
        s = stream_point(target, c, args.stream_requests)
        streams.append(s)
        print(
            f"   stream c={c:<3} first chunk p50 {s['first_chunk_p50_ms']:.2f}  "
            f"p99 {s['first_chunk_p99_ms']:.2f} ms  failed {s['errors']}/{s['streams']}",
            flush=True,
        )
    return {"name": target.name, "points": points, "streams": streams}


def _added(result: Result, direct: Result) -> None:
    for p, d in zip(result["points"], direct["points"], strict=True):
        p["added_p50_ms"] = p["p50_ms"] - d["p50_ms"]
        p["added_p99_ms"] = p["p99_ms"] - d["p99_ms"]
    for s, d in zip(result["streams"], direct["streams"], strict=True):
        s["added_first_chunk_p50_ms"] = s["first_chunk_p50_ms"] - d["first_chunk_p50_ms"]


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def table(results: dict[str, Result]) -> None:
    print("\ngateway            c    req/s  p50 ms  p99 ms  +p50 ms  +p99 ms  CPU ms/req  errors")
    for r in results.values():
        if "error" in r:
            print(f"{r['name']:<16} unavailable: {r['error'].splitlines()[0]}")
            continue
        for p in r["points"]:
            print(
                f"{r['name']:<16} {p['concurrency']:>3} {p['rps']:>8.0f} {p['p50_ms']:>7.2f} "
                f"{p['p99_ms']:>7.2f} {_fmt(p.get('added_p50_ms'), '>8.2f')} "
                f"{_fmt(p.get('added_p99_ms'), '>8.2f')} {_fmt(p['server_cpu_ms'], '>11.3f')} "
                f"{p['errors']:>7}"
            )
    print("\nstreaming          c  first p50  first p99  +p50 ms  failed")
    for r in results.values():
        for s in r.get("streams", []):
            print(
                f"{r['name']:<16} {s['concurrency']:>3} {_fmt(s['first_chunk_p50_ms'], '>9.2f')}"
                f"  {_fmt(s['first_chunk_p99_ms'], '>9.2f')} "
                f"{_fmt(s.get('added_first_chunk_p50_ms'), '>8.2f')} "
                f"{s['errors']:>4}/{s['streams']}"
            )


def max_rps(result: Result) -> float:
    return max(p["rps"] for p in result["points"])


def median_cpu(result: Result) -> float | None:
    cpus = sorted(p["server_cpu_ms"] for p in result["points"] if p["server_cpu_ms"] is not None)
    return cpus[len(cpus) // 2] if cpus else None


def ratios(results: dict[str, Result], mine: str) -> dict[str, dict[str, float]]:
    """Ours (the run named ``mine``) ÷ each peer: max req/s, and CPU per request the other
    way round (peer ÷ ours, the median over the concurrency points): the second holds up
    better when other work shares the cores, since it does not depend on how much CPU each
    server was given."""
    me = results.get(mine)
    out: dict[str, dict[str, float]] = {}
    if me is None or "error" in me:
        return out
    for peer in ("litellm", "portkey"):
        other = results.get(peer)
        if other is None or "error" in other:
            continue
        out[peer] = {"max_rps": max_rps(me) / max_rps(other)}
        cpu, theirs = median_cpu(me), median_cpu(other)
        if cpu and theirs:
            out[peer]["cpu_per_request"] = theirs / cpu
    return out


def verdicts(results: dict[str, Result], mine: str) -> list[tuple[str, bool, str]]:
    """TARGETS.md, LLM gateway section, for our gateway's run named ``mine``."""
    me = results.get(mine)
    if me is None or "error" in me:
        return []
    c1 = next(p for p in me["points"] if p["concurrency"] == 1) if me["points"] else None
    out: list[tuple[str, bool, str]] = []
    for peer, factor in (("portkey", 2), ("litellm", 30)):
        other = results.get(peer)
        if other is not None and "error" not in other:
            ratio = max_rps(me) / max_rps(other)
            out.append((f"max req/s >= {factor}x {peer}", ratio >= factor, f"{ratio:.1f}x"))
    if c1 is not None and "added_p50_ms" in c1:
        out.append(("added p50 < 1 ms at c=1", c1["added_p50_ms"] < 1, f"{c1['added_p50_ms']:.2f}"))
        out.append(("added p99 < 5 ms at c=1", c1["added_p99_ms"] < 5, f"{c1['added_p99_ms']:.2f}"))
    cpus = [p["server_cpu_ms"] for p in me["points"] if p["server_cpu_ms"] is not None]
    if cpus:
        out.append(("CPU per request < 0.7 ms (worst point)", max(cpus) < 0.7, f"{max(cpus):.3f}"))
    s1 = next((s for s in me["streams"] if s["concurrency"] == 1), None)
    if s1 is not None and "added_first_chunk_p50_ms" in s1:
        added = s1["added_first_chunk_p50_ms"]
        out.append(("stream first chunk < 1 ms added at c=1", added < 1, f"{added:.2f}"))
    failed = sum(s["errors"] for s in me["streams"])
    out.append(("no failed stream at any concurrency", failed == 0, str(failed)))
    out.append(("no failed request", sum(p["errors"] for p in me["points"]) == 0, ""))
    return out


def machine() -> dict[str, Any]:
    return {
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "wrk": shutil.which("wrk"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per point")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each point")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--stream-requests", type=int, default=400, help="streams per point")
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gateway.json")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes for paramstack and LiteLLM alike (Portkey runs one node "
        "process); ours share limits and quotas through the LMDB file",
    )
    parser.add_argument(
        "--ours-limiter",
        choices=["auto", "redis"],
        default="auto",
        help="redis: our workers share limits through a private Redis instead (its CPU is "
        "charged to us)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: `apt-get install wrk` (make bench-gateway does it)")
        return 2
    info = machine()
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="paramstack-gwbench-") as tmp:
        work = Path(tmp)
        with upstream(work) as direct:
            url = f"http://127.0.0.1:{direct.port}/v1"
            results["direct"] = measure(direct, args)
            for name in args.peers:
                try:
                    peer = PEERS[name]
                    if name in OURS:
                        peer = functools.partial(
                            ours,
                            workers=args.workers,
                            limiter=args.ours_limiter,
                            guard=name != "ours",
                            remember=name != "ours-guard-nocache",
                        )
                    elif name == "litellm":
                        peer = functools.partial(litellm, workers=args.workers)
                    with peer(url, work) as target:
                        results[name] = measure(target, args)
                except (PeerUnavailable, RuntimeError, OSError) as exc:
                    print(f"!! {name} unavailable: {exc}", flush=True)
                    results[name] = {"name": name, "error": str(exc)}
    for name, r in results.items():
        if name != "direct" and "error" not in r:
            _added(r, results["direct"])
    table(results)
    ratio = {mine: ratios(results, mine) for mine in OURS if mine in results}
    checks = {mine: verdicts(results, mine) for mine in OURS if mine in results}
    for mine, what in OURS.items():
        if mine not in results:
            continue
        print(f"\n{mine}: {what}")
        for peer, r in ratio[mine].items():
            cpu = r.get("cpu_per_request")
            print(
                f"   {mine} / {peer}: max req/s {r['max_rps']:.1f}x; "
                f"CPU per request {peer} / {mine} {_fmt(cpu, '.1f')}x"
            )
        for label, ok, value in checks[mine]:
            print(f"   {'PASS' if ok else 'FAIL'}  {label}: {value}")
    busy = [p["machine_busy"] for r in results.values() for p in r.get("points", [])]
    info["cpu_percent_other"] = psutil.cpu_percent(interval=0.5)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": info,
        "settings": {k: str(v) for k, v in vars(args).items()},
        "results": results,
        "ratios": ratio,
        "targets": {
            mine: [{"check": c, "pass": ok, "value": v} for c, ok, v in found]
            for mine, found in checks.items()
        },
        "max_machine_busy": max(busy, default=0.0),
    }
    args.out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(f"\nwritten {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 1 if args.strict and not all(ok for f in checks.values() for _, ok, _ in f) else 0


if __name__ == "__main__":
    sys.exit(main())
