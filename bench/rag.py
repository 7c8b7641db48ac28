"""RAG bench: ingestion chunks/s and query latency per tenant, embedded default vs qdrant-client.

    .venv/bin/python bench/rag.py                         # 10 tenants x 1k and x 2k chunks
    .venv/bin/python bench/rag.py --per-tenant 10000,100000 --tenants 10

qdrant-client local mode is brute force in Python, so it runs only where tenants x chunks is at
most --local-max-total (20k, its own documentation's limit); the edge store runs every size.

Retrieval latency uses synthetic chunks (random unit vectors + Zipf-distributed Turkish-like
words, so the BM25 side sees a realistic term distribution) loaded straight into the store: the
embedder is not the thing measured there. "End to end" adds the real query embedding (e5).
Ingestion throughput is the real pipeline (chunk + e5 embed + upsert) on real Turkish text.
Every figure is printed beside its baseline from the same run (qdrant-client local mode).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from paramstack.rag.embedders import get_embedder
from paramstack.rag.fusion import rrf
from paramstack.rag.index import RagIndex
from paramstack.rag.loaders import make_document
from paramstack.rag.stores.protocol import CollectionInfo, Store, open_store
from paramstack.rag.textproc import doc_sparse
from paramstack.rag.types import Chunk, StoredChunk

_SYL = (
    "ka ra ba la ma sa ta ya de le me ne se te ye gi li mi ni si ti yı kı lı çe şe ğa ol ur ün ör"
)
SYLLABLES = _SYL.split(" ")
SAMPLE_TR = (
    "Cumhuriyet, milletin kendi kaderine sahip olmasıdır. Öğretmenler yeni nesli yetiştirir; "
    "millet mektepleri her köyde açılmalıdır. Ordu, sabaha karşı düşman mevzilerine baskın yaptı. "
    "Ekonomi, tarım ve sanayi birlikte kalkınmalıdır. Kadınların eğitimi milletin geleceğidir."
)


def vocabulary(n: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def synthetic(
    n: int, dim: int, vocab: list[str], rng: np.random.Generator
) -> list[tuple[str, np.ndarray]]:
    ranks = rng.zipf(1.2, size=(n, 60)) % len(vocab)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return [(" ".join(vocab[r] for r in ranks[i]), vecs[i]) for i in range(n)]


def load(
    store: Store, tenants: int, per_tenant: int, dim: int, seed: int
) -> tuple[dict[str, Any], list]:
    rng = np.random.default_rng(seed)
    vocab = vocabulary(20000, random.Random(seed))
    sample: list = []
    t0 = time.perf_counter()
    for t in range(tenants):
        tenant = f"t{t}"
        store.create_collection(tenant, "default", CollectionInfo("synthetic", dim))
        for start in range(0, per_tenant, 2000):
            rows = synthetic(min(2000, per_tenant - start), dim, vocab, rng)
            items = [
                StoredChunk(
                    Chunk(f"d{start + i}", "v1", 0, text, 0, len(text), "synthetic"),
                    vec.tolist(),
                    doc_sparse(text),
                )
                for i, (text, vec) in enumerate(rows)
            ]
            store.upsert(tenant, "default", items)
            if t == 0 and start == 0:
                sample = rows[:200]
    load_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    if hasattr(store, "optimize"):
        store.optimize()
    return {"load_s": round(load_s, 1), "index_build_s": round(time.perf_counter() - t1, 1)}, sample


def pct(xs: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(xs, 50)), 3),
        "p99_ms": round(float(np.percentile(xs, 99)), 3),
    }


def latency(
    store: Store, sample: list, tenants: int, queries: int, seed: int, embed: bool
) -> dict[str, Any]:
    rng = np.random.default_rng(seed + 1)
    emb = get_embedder() if embed else None
    out: dict[str, list[float]] = {"dense": [], "lexical": [], "hybrid": []}
    e2e: list[float] = []
    for q in range(queries):
        text, vec = sample[q % len(sample)]
        words = " ".join(text.split()[:4])
        noisy = (vec + 0.05 * rng.standard_normal(vec.shape).astype(np.float32)).tolist()
        tenant = f"t{q % tenants}"
        t0 = time.perf_counter()
        d = store.dense_search(tenant, "default", noisy, 20, {})
        t1 = time.perf_counter()
        lx = store.lexical_search(tenant, "default", words, 20, {})
        t2 = time.perf_counter()
        rrf([lx, d])
        t3 = time.perf_counter()
        out["dense"].append((t1 - t0) * 1000)
        out["lexical"].append((t2 - t1) * 1000)
        out["hybrid"].append((t3 - t0) * 1000)
        if emb is not None and q < 50:
            t4 = time.perf_counter()
            qv = emb.query(words)[0]
            qv = np.resize(qv, len(vec)).tolist()
            rrf(
                [
                    store.lexical_search(tenant, "default", words, 20, {}),
                    store.dense_search(tenant, "default", qv, 20, {}),
                ]
            )
            e2e.append((time.perf_counter() - t4) * 1000)
    res: dict[str, Any] = {k: pct(v) for k, v in out.items()}
    if e2e:
        res["hybrid_with_query_embedding"] = pct(e2e)
    return res


def ingestion(workdir: Path, docs: int) -> dict[str, Any]:
    store = open_store(str(workdir / "ingest"))
    corpus = Path("var/rag-eval/corpus.jsonl")
    if corpus.exists():
        rows = [json.loads(line) for line in corpus.open(encoding="utf-8")][:docs]
        documents = [make_document(r["id"], r["text"], "speeches") for r in rows]
    else:
        documents = [make_document(f"d{i}", SAMPLE_TR * 2, "sample") for i in range(docs)]
    stats = RagIndex(store, "ingest").ingest(documents)
    store.close()
    return {
        "documents": stats.documents,
        "chunks": stats.chunks,
        "seconds": round(stats.seconds, 1),
        "chunks_per_s": round(stats.chunks_per_s, 2),
        "text": "speech passages" if corpus.exists() else "sample",
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tenants", type=int, default=10)
    ap.add_argument("--per-tenant", default="1000,2000")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--ingest-docs", type=int, default=40)
    ap.add_argument("--local-queries", type=int, default=50)
    ap.add_argument(
        "--local-max-total",
        type=int,
        default=20_000,
        help="skip qdrant-client local mode above this many points (brute force)",
    )
    ap.add_argument("--out", type=Path, default=Path("bench/results/rag.json"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    results: dict[str, Any] = {"tenants": args.tenants, "dim": args.dim, "queries": args.queries}
    try:
        if args.ingest_docs:
            results["ingestion"] = ingestion(work, args.ingest_docs)
            print("ingestion:", results["ingestion"], flush=True)
        for per in [int(x) for x in args.per_tenant.split(",")]:
            total = per * args.tenants
            row: dict[str, Any] = {}
            engines = [("edge", str(work / f"edge{per}"))]
            if total <= args.local_max_total:
                engines.append(("qdrant-client-local", f"qdrant+local://{work / f'ql{per}'}"))
            for name, url in engines:
                store = open_store(url)
                build, sample = load(store, args.tenants, per, args.dim, seed=per)
                nq = args.queries if name == "edge" else args.local_queries
                lat = latency(store, sample, args.tenants, nq, seed=per, embed=name == "edge")
                store.close()
                row[name] = build | lat
                print(
                    f"{per:>7} chunks/tenant x {args.tenants} tenants  {name:<20} {row[name]}",
                    flush=True,
                )
            if "qdrant-client-local" in row:
                base = row["qdrant-client-local"]["hybrid"]["p50_ms"]
                row["speedup_p50_hybrid"] = round(base / row["edge"]["hybrid"]["p50_ms"], 1)
            row["target_p50_under_10ms"] = row["edge"]["hybrid"]["p50_ms"] < 10
            results[f"per_tenant_{per}"] = row
            print(
                f"  edge hybrid p50 {row['edge']['hybrid']['p50_ms']} ms "
                f"(target < 10 ms: {'PASS' if row['target_p50_under_10ms'] else 'FAIL'})"
                + (
                    f"; {row['speedup_p50_hybrid']}x faster than qdrant-client local mode"
                    if "speedup_p50_hybrid" in row
                    else ""
                ),
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
