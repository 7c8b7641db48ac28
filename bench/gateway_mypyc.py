#!/usr/bin/env python3
"""Does compiling the gateway's hot path with mypyc cut its CPU per request? Pure vs compiled.

One command, from the repository root::

    .venv/bin/python bench/gateway_mypyc.py [--rounds 2] [--duration 8] [--app-rounds 12]

It copies ``src/`` and ``bench/`` into a scratch directory, compiles ``COMPILED`` there with
mypyc (``mypycify``, the mypy pinned in the ``dev`` extra; build wall and CPU time printed),
checks the compiled modules are the ones imported, then alternates between this tree (pure
Python, the baseline) and the compiled copy, ``--rounds`` times each:

- ``bench/gateway.py --peers ours`` (a real ``paramstack serve`` under wrk-style load, the
  server's CPU ms per request at c=1 and c=16): the figure that decides;
- ``bench/gateway_app.py`` (the app driven in-process, no HTTP server): the gateway's own
  code only, so an upper bound on what compiling it can give.

Ratios are compiled ÷ pure, medians of the rounds, so both sides see the same machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The hot path's modules that mypyc 2.4.1 compiles as they are. Left out, and why:
# backends/http11, gateway/sse_stream, gateway/llm_router (async generators: "unimplemented"),
# gateway/{openai_protocol,model_table,complexity}, guard/policy (pydantic models: the C does
# not compile, `CPyModule_pydantic___main` undeclared), gateway/rag_context (internal mypyc
# error on a narrowed `Any`), backends/protocol (`@runtime_checkable` Protocol fails at
# import), backends/{upstream,openai_upstream} (a decorator-registered subclass of a native
# class).
COMPILED = [
    "attest/outputs",
    "backends/circuit",
    "backends/openai_shapes",
    "gateway/chat_guard",
    "gateway/errors",
    "gateway/hot_routes",
    "gateway/limit_types",
    "gateway/limits",
    "gateway/log_writer",
    "gateway/middleware",
    "gateway/ops_metrics",
    "gateway/payload",
    "gateway/routing",
    "gateway/serving_call",
    "gateway/serving_chat",
    "gateway/telemetry",
    "gateway/token_budget",
    "gateway/tracing",
    "gateway/usage_ledger",
    "guard/checks",
    "guard/copyright",
    "guard/decoding",
    "guard/disclaimers",
    "guard/engine",
    "guard/findings",
    "guard/injection",
    "guard/overrides",
    "guard/pii",
    "guard/pii_patterns",
    "guard/regex_prefilter",
    "guard/streaming",
    "guard/textnorm",
    "guard/toxicity",
    "registry/key_material",
    "registry/key_ring",
]

BUILD = """
from mypyc.build import mypycify
from setuptools import setup
paths = [f"src/paramstack/{{m}}.py" for m in {modules!r}]
setup(name="paramstack-mypyc-bench", ext_modules=mypycify(paths, opt_level="3"),
      package_dir={{"": "src"}}, script_args=["build_ext", "--inplace", "--quiet"])
"""


def compile_copy(dest: Path) -> tuple[float, float]:
    """The scratch tree, compiled in place; returns (wall s, CPU s of the build)."""
    for part in ("src", "bench"):
        shutil.copytree(ROOT / part, dest / part, ignore=shutil.ignore_patterns("*.so"))
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")  # mypy's settings
    before = os.times()
    t0 = time.monotonic()
    build = subprocess.run(
        [sys.executable, "-c", BUILD.format(modules=COMPILED)],
        cwd=dest,
        capture_output=True,
        text=True,
    )
    if build.returncode != 0:  # mypyc's and gcc's output only when they fail
        raise SystemExit(f"mypyc build failed:\n{build.stdout[-5000:]}\n{build.stderr[-5000:]}")
    after = os.times()
    cpu = after.children_user + after.children_system
    cpu -= before.children_user + before.children_system
    return time.monotonic() - t0, cpu


def check_compiled(tree: Path, compiled: bool) -> None:
    probe = "import paramstack.gateway.hot_routes as m; print(m.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", probe], env=_env(tree), check=True, capture_output=True, text=True
    ).stdout.strip()
    if out.endswith(".so") != compiled:
        raise SystemExit(f"{tree}: expected {'compiled' if compiled else 'pure'}, got {out}")


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree / "src")}


def server_cpu(tree: Path, args: argparse.Namespace, out: Path) -> list[float]:
    """Server CPU ms per request at each concurrency, from one ``bench/gateway.py`` run."""
    cmd = [sys.executable, "bench/gateway.py", "--peers", "ours", "--out", str(out)]
    cmd += ["--concurrency", *map(str, args.concurrency), "--duration", str(args.duration)]
    cmd += ["--stream-requests", "16"]
    subprocess.run(cmd, cwd=tree, env=_env(tree), check=True, capture_output=True)
    points = json.loads(out.read_text())["results"]["ours"]["points"]
    return [float(p["server_cpu_ms"]) for p in points]


def app_cpu(tree: Path, rounds: int) -> tuple[float, float]:
    """(min, median) CPU ms per chat request of the hot-routes app, in-process."""
    cmd = [sys.executable, "bench/gateway_app.py", "--rounds", str(rounds)]
    text = subprocess.run(
        cmd, cwd=tree, env=_env(tree), check=True, capture_output=True, text=True
    ).stdout
    found = re.search(r"^hot routes\s+([\d.]+)\s+([\d.]+)", text, re.MULTILINE)
    if found is None:
        raise SystemExit(f"no hot-routes figure in bench/gateway_app.py's output:\n{text}")
    return float(found[1]), float(found[2])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--rounds", type=int, default=2, help="server runs per tree")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per point")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--app-rounds", type=int, default=12, help="gateway_app.py rounds")
    args = parser.parse_args()
    if 1 not in args.concurrency:
        parser.error("--concurrency must include 1 (bench/gateway.py's verdicts need it)")
    with tempfile.TemporaryDirectory(prefix="paramstack-mypyc-") as tmp:
        compiled = Path(tmp) / "compiled"
        wall, cpu = compile_copy(compiled)
        print(f"mypyc build of {len(COMPILED)} modules: {wall:.0f} s wall, {cpu:.0f} s CPU")
        trees = {"pure": ROOT, "compiled": compiled}
        for name, tree in trees.items():
            check_compiled(tree, name == "compiled")
        server: dict[str, list[list[float]]] = {name: [] for name in trees}
        app: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
        for i in range(args.rounds):
            for name, tree in trees.items():
                server[name].append(server_cpu(tree, args, Path(tmp) / f"{name}-{i}.json"))
                app[name].append(app_cpu(tree, args.app_rounds))
                cpu = " / ".join(f"{v:.3f}" for v in server[name][-1])
                low, mid = app[name][-1]
                print(
                    f"round {i + 1} {name:<8} server CPU ms/request {cpu}"
                    f" | in-process min / median {low:.3f} / {mid:.3f}",
                    flush=True,
                )
    print(f"load average at the end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    for j, c in enumerate(args.concurrency):
        pure = statistics.median(r[j] for r in server["pure"])
        comp = statistics.median(r[j] for r in server["compiled"])
        print(f"server c={c:<3} pure {pure:.3f}  compiled {comp:.3f}  ratio {comp / pure:.2f}")
    for k, label in enumerate(("min", "median")):
        pure = statistics.median(r[k] for r in app["pure"])
        comp = statistics.median(r[k] for r in app["compiled"])
        print(f"in-process {label:<6} pure {pure:.3f}  compiled {comp:.3f}", end="  ")
        print(f"ratio {comp / pure:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
