"""The own (adapted) embedder on the reported Turkish set: cross-fitted and transductive figures.

    PYTHONPATH=src nice -n 10 .venv/bin/python bench/rag_adapt_eval.py \
        --evalset var/evalset --config configs/rag_adapt.yaml --fusion score --dense-weight W

Run once, after every setting (adapt config, fusion) was chosen on the development set.

* cross-fitted: the speeches are split in two halves (alternating by speech id); model A is
  adapted on half 1's passages and embeds the whole corpus to answer half 2's queries, model B
  the reverse; metrics are averaged over all queries. No query's passage was seen in training.
* transductive: one model adapted on the whole indexed corpus (which lacks every query
  sentence), the way a tenant would run it; its passages were seen in training.

Lexical results are the same BM25 over the same corpus in every store; the report gives each
figure per mode and the hybrid's relative recall@5 gain over the best single retriever.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from paramstack.config import Settings
from paramstack.rag.adapt import AdaptConfig, adapt, read_passages
from paramstack.rag.embed_cache import CachedEmbedder
from paramstack.rag.embedders import get_embedder, use_instance
from paramstack.rag.evaluate import Labelled, evaluate, hybrid_gain, read_queries
from paramstack.rag.fusion import Fusion
from paramstack.rag.index import RagIndex
from paramstack.rag.loaders import load
from paramstack.rag.stores.protocol import open_store
from paramstack.train.config import load_config


def _speech(doc_id: str) -> str:
    return doc_id.split(":", 1)[0]


def _run(
    name: str,
    train_rows: list[dict[str, Any]],
    queries: list[Labelled],
    args: argparse.Namespace,
    cfg: AdaptConfig,
) -> dict[str, Any]:
    out = args.work / name
    shutil.rmtree(out, ignore_errors=True)
    model = adapt([str(r["text"]) for r in train_rows], out / "embedder", cfg, home=Settings().home)
    store = open_store(str(out / "store"))
    try:
        index = RagIndex(store, "eval", "bench")
        emb = index.embedder(args.spec.format(dir=out / "embedder"))
        t0 = time.perf_counter()
        index.ingest(list(load([str(args.evalset / "corpus.jsonl")])), emb, chunk_size=1200)
        ingest_s = time.perf_counter() - t0
        store.optimize()
        lat = []
        for q in queries[:300]:  # the query side of ONNX inference alone, tokenizer included
            t1 = time.perf_counter()
            emb.query(q.query)
            lat.append((time.perf_counter() - t1) * 1000)
        fusion = Fusion(args.fusion, args.dense_weight, args.rrf_k)
        results = evaluate(index, queries, fusion=fusion)
    finally:
        store.close()
    return {
        "queries": len(queries),
        "train_passages": model.passages,
        "train_cpu_s": round(model.train_cpu_s, 1),
        "train_wall_s": round(model.train_wall_s, 1),
        "ingest_s": round(ingest_s, 1),
        "query_embed_ms_p50": round(float(np.percentile(lat, 50)), 3),
        "query_embed_ms_p99": round(float(np.percentile(lat, 99)), 3),
        "results": results,
    }


def _pooled(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Query-weighted mean of every metric (each part's figures are means over its queries)."""
    n = sum(p["queries"] for p in parts)
    out: dict[str, Any] = {}
    for mode in parts[0]["results"]:
        keys = [k for k in parts[0]["results"][mode] if not k.startswith("latency")]
        out[mode] = {
            k: round(sum(p["results"][mode][k] * p["queries"] for p in parts) / n, 4) for k in keys
        }
    return out


def latency(folder: Path, evalset: Path) -> None:
    """Query embedding (p50/p99 wall, p50 CPU) and passage throughput: own model vs use-m3,
    same process, no cache."""
    from paramstack.rag.own_embedder import OwnEmbedder

    qs = [q.query for q in read_queries(evalset / "queries.jsonl")][:300]
    ps = read_passages([evalset / "corpus.jsonl"])[:256]
    for name, emb in (("own", OwnEmbedder(folder)), ("use-m3", get_embedder("use-m3"))):
        emb.query(qs[0])
        wall, cpu = [], []
        for q in qs:
            t, c = time.perf_counter(), time.process_time()
            emb.query(q)
            wall.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
        c = time.process_time()
        emb.passages(ps)
        rate = len(ps) / max(time.process_time() - c, 1e-9)
        print(
            f"{name}: query p50 {np.percentile(wall, 50):.3f} ms p99 {np.percentile(wall, 99):.3f}"
            f" ms (CPU p50 {np.percentile(cpu, 50):.3f} ms); passages {rate:.0f}/s of CPU"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--evalset", type=Path, default=Path("var/evalset"))
    ap.add_argument("--work", type=Path, default=Path("var/rag-adapt-eval"))
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    ap.add_argument("--fusion", default="score")
    ap.add_argument("--dense-weight", type=float, default=0.6)
    ap.add_argument("--rrf-k", type=int, default=60)
    ap.add_argument("--spec", default="own:{dir}", help="dense embedder; {dir} = the adapted model")
    ap.add_argument("--embed-cache", type=Path, help="stored vectors for use-m3 inside a mix")
    ap.add_argument("--only", choices=["crossfit", "transductive"], default=None)
    ap.add_argument("--latency", type=Path, help="only time this adapted model vs use-m3")
    args = ap.parse_args()
    if args.latency is not None:
        latency(args.latency, args.evalset)
        return
    cfg = load_config(AdaptConfig, args.config, args.overrides)
    if args.embed_cache is not None:
        use_instance(CachedEmbedder(get_embedder("use-m3"), args.embed_cache))
    rows = [json.loads(x) for x in (args.evalset / "corpus.jsonl").read_text().splitlines()]
    speeches = sorted({_speech(str(r["id"])) for r in rows})
    half = {s: i % 2 for i, s in enumerate(speeches)}
    queries = read_queries(args.evalset / "queries.jsonl")
    assert read_passages([args.evalset / "corpus.jsonl"])  # the corpus reads as adapt reads it
    report: dict[str, Any] = {
        "config": vars(cfg),
        "spec": args.spec,
        "fusion": [args.fusion, args.dense_weight, args.rrf_k],
    }
    if args.only in (None, "crossfit"):
        parts = []
        for train_half in (0, 1):
            train = [r for r in rows if half[_speech(str(r["id"]))] == train_half]
            test = [q for q in queries if half[_speech(next(iter(q.relevant)))] != train_half]
            parts.append(_run(f"half{train_half}", train, test, args, cfg))
            print(json.dumps(parts[-1]), flush=True)
        pooled = _pooled(parts)
        report["crossfit"] = {"parts": parts, "pooled": pooled, "gain": hybrid_gain(pooled)}
    if args.only in (None, "transductive"):
        whole = _run("whole", rows, queries, args, cfg)
        whole["gain"] = hybrid_gain(whole["results"])
        report["transductive"] = whole
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "report.json").write_text(json.dumps(report, indent=2))
    for kind in ("crossfit", "transductive"):
        if kind in report:
            res = report[kind].get("pooled") or report[kind]["results"]
            print(kind, json.dumps(res), "gain", report[kind]["gain"])


if __name__ == "__main__":
    main()
