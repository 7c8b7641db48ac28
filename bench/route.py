#!/usr/bin/env python3
"""What the hybrid router adds per request: ``model: auto`` against the model it picks.

One command, from the repository root::

    .venv/bin/python bench/route.py [--requests N] [--concurrency 1 16]

The same processes as ``bench/gateway.py`` (fake OpenAI-compatible upstream, a fresh home with
a tenant, ``paramstack serve``), plus a router ``auto`` whose every band is ``bench-chat``, so
both paths end in the same upstream call and the difference is the router alone (complexity
score, decision, estimated costs, routing JSON in the ledger, route metrics). Two bodies: a
greeting and ~1 kB of Turkish legal text (where term matching costs most). Prints p50/p99 and
req/s of each path and the router's added p50 and req/s ratio, both measured in the same run;
the two paths alternate ``--rounds`` times and each keeps its best round (a loaded machine
drifts more between rounds than the router costs).
"""

# ruff: noqa: RUF001  (Turkish text: the dotless i is the point)

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway import HOST, free_port, measure, prepare_home, process, request_bytes

LEGAL = (
    "Müvekkilim ile kiracı arasındaki kira sözleşmesinin feshi konusunda Türk Borçlar Kanunu "
    "madde 347 ve 350 hükümlerini karşılaştırarak değerlendiriniz. Kiracının tahliye "
    "taahhütnamesi geçersiz sayılırsa davacı olarak hangi tazminat taleplerinde bulunabiliriz? "
)
BODIES = {
    "greeting": "Merhaba, nasılsın?",
    "legal 1 kB": (LEGAL * 6)[:1024],
}


def write_router(models: Path) -> None:
    table = orjson.loads(models.read_text())
    table["routers"] = [
        {
            "name": "auto",
            "simple": "bench-chat",
            "medium": {"bench-chat": 1},
            "complex": "bench-chat",
        }
    ]
    models.write_text(orjson.dumps(table).decode())  # JSON is YAML


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    up_port, gw_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="paramstack-bench-") as tmp:
        home = Path(tmp) / "home"
        env, key = prepare_home(home, f"http://{HOST}:{up_port}/v1")
        write_router(home / "models.yaml")
        upstream = [sys.executable, "-m", "tests.fake_upstream", str(up_port)]
        serve = [sys.executable, "-m", "paramstack", "serve", "--port", str(gw_port)]
        with process(upstream, env, up_port), process(serve, env, gw_port):
            print(
                f"{'body':>11} {'conc':>4} {'model':>10} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}"
            )
            for label, text in BODIES.items():
                for c in args.concurrency:
                    results: dict[str, dict[str, float]] = {}
                    for _ in range(args.rounds):
                        for model in ("bench-chat", "auto"):
                            chat = {"model": model, "messages": [{"role": "user", "content": text}]}
                            body = orjson.dumps({**chat, "max_tokens": 5})
                            raw = request_bytes(gw_port, "/v1/chat/completions", key, body)
                            r = asyncio.run(measure(gw_port, raw, args.requests, c))
                            if model not in results or r["p50_ms"] < results[model]["p50_ms"]:
                                results[model] = r
                    for model, r in results.items():
                        print(
                            f"{label:>11} {c:>4} {model:>10} {r['p50_ms']:>8.2f} "
                            f"{r['p99_ms']:>8.2f} {r['rps']:>8.0f}"
                        )
                    direct, routed = results["bench-chat"], results["auto"]
                    print(
                        f"{label:>11} {c:>4} {'router':>10} added p50 "
                        f"{routed['p50_ms'] - direct['p50_ms']:+.2f} ms, req/s ratio "
                        f"auto/direct {routed['rps'] / direct['rps']:.2f}"
                    )


if __name__ == "__main__":
    main()
