"""Retrieval quality on a labelled set: recall@k, MRR@10, nDCG@10 and query latency per mode.

Relevance is by document id (a hit list is collapsed to its documents, best rank first), so a
passage split into two chunks still counts once. Latency is end to end through
:meth:`RagIndex.query`, query embedding included for the dense and hybrid modes.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paramstack.errors import InvalidInput
from paramstack.rag.fusion import DEFAULT_FUSION, Fusion
from paramstack.rag.index import MODES, RagIndex

KS = (1, 5, 10)


@dataclass(frozen=True)
class Labelled:
    query: str
    relevant: frozenset[str]


def read_queries(path: Path, limit: int | None = None) -> list[Labelled]:
    out: list[Labelled] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                out.append(Labelled(str(row["query"]), frozenset(map(str, row["relevant"]))))
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidInput(f"{path}:{n}: need {{'query': str, 'relevant': [ids]}}") from exc
    if not limit or limit >= len(out):
        return out
    step = len(out) / limit  # an even spread: the file is in corpus order (speech by speech)
    return [out[int(i * step)] for i in range(limit)]


def ranked_docs(doc_ids: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for d in doc_ids:
        seen.setdefault(d, None)
    return list(seen)


def score(ranked: list[str], relevant: frozenset[str]) -> dict[str, float]:
    """Per-query metrics for one ranked list of document ids."""
    out = {f"recall@{k}": len(relevant & set(ranked[:k])) / len(relevant) for k in KS}
    rr = next((1.0 / r for r, d in enumerate(ranked[:10], 1) if d in relevant), 0.0)
    dcg = sum(1.0 / math.log2(r + 1) for r, d in enumerate(ranked[:10], 1) if d in relevant)
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(relevant), 10) + 1))
    out["mrr@10"] = rr
    out["ndcg@10"] = dcg / ideal
    return out


def evaluate(
    index: RagIndex,
    queries: list[Labelled],
    modes: tuple[str, ...] = MODES,
    on_query: Callable[[], None] | None = None,
    fusion: Fusion = DEFAULT_FUSION,
) -> dict[str, Any]:
    """Mean metrics and latency percentiles per mode (same queries, same store)."""
    results: dict[str, Any] = {}
    for mode in modes:
        sums: dict[str, float] = {}
        lat: list[float] = []
        for q in queries:
            t0 = time.perf_counter()
            hits = index.query(q.query, k=20, mode=mode, fusion=fusion)
            lat.append((time.perf_counter() - t0) * 1000)
            for key, val in score(ranked_docs([h.doc_id for h in hits]), q.relevant).items():
                sums[key] = sums.get(key, 0.0) + val
            if on_query:
                on_query()
        n = max(len(queries), 1)
        results[mode] = {k: round(v / n, 4) for k, v in sums.items()} | {
            "latency_ms_p50": round(float(np.percentile(lat, 50)), 2) if lat else None,
            "latency_ms_p99": round(float(np.percentile(lat, 99)), 2) if lat else None,
        }
    return results


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table (one row per retriever) plus the run's context."""
    cols = [f"recall@{k}" for k in KS] + ["mrr@10", "ndcg@10", "latency_ms_p50", "latency_ms_p99"]
    lines = [
        f"# RAG evaluation: {report.get('dataset', '')}",
        "",
        f"- queries: {report.get('queries')}; documents: {report.get('documents')}; "
        f"chunks: {report.get('chunks')}; embedder: `{report.get('embedder')}`; "
        f"store: `{report.get('store_kind')}`",
        f"- ingestion: {report.get('ingest', {}).get('chunks_per_s', 0):.2f} chunks/s "
        f"({report.get('ingest', {}).get('chunks', 0)} chunks in "
        f"{report.get('ingest', {}).get('seconds', 0):.0f} s)",
        f"- hybrid fusion: {report.get('fusion', {})}"
        + (
            "; embeddings from a cache (latency excludes them, ingestion rate is not real)"
            if report.get("query_embeddings_cached")
            else ""
        ),
        "",
        "| retriever | " + " | ".join(cols) + " |",
        "| --- |" + " --- |" * len(cols),
    ]
    for mode, row in report["results"].items():
        lines.append(f"| {mode} | " + " | ".join(str(row.get(c, "-")) for c in cols) + " |")
    gain = report.get("hybrid_gain_recall@5")
    if gain is not None:
        lines += ["", f"Hybrid vs best single retriever, relative recall@5: {gain:+.1%}"]
    return "\n".join(lines) + "\n"


def hybrid_gain(results: dict[str, Any]) -> float | None:
    if not {"hybrid", "lexical", "dense"} <= results.keys():
        return None
    best = max(results["lexical"]["recall@5"], results["dense"]["recall@5"])
    return round(results["hybrid"]["recall@5"] / best - 1.0, 4) if best else None
