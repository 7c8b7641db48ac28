"""Choosing the hybrid's fusion on a development set, never on the set that is reported.

Each query's lexical and dense candidate lists are fetched once from the real store; every
fusion setting is then scored on those lists in memory, so a grid of methods × weights costs
seconds instead of a store round trip per setting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from paramstack.rag.evaluate import Labelled, ranked_docs, score
from paramstack.rag.fusion import Fusion
from paramstack.rag.index import RagIndex
from paramstack.rag.types import Hit

WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.25, 1.5, 2.0)
RRF_KS = (10, 30, 60)


@dataclass(frozen=True)
class Candidates:
    relevant: frozenset[str]
    lexical: list[Hit]
    dense: list[Hit]


def collect(index: RagIndex, queries: list[Labelled], depth: int = 80) -> list[Candidates]:
    """Both candidate lists per query, as ``hybrid`` would fetch them with this ``depth``."""
    out = []
    for q in queries:
        lexical = index.query(q.query, k=min(depth, 100), mode="lexical", depth=depth)
        dense = index.query(q.query, k=min(depth, 100), mode="dense", depth=depth)
        out.append(Candidates(q.relevant, lexical, dense))
    return out


def metrics(cands: list[Candidates], fusion: Fusion | None) -> dict[str, float]:
    """Mean metrics of ``fusion`` (None: lexical alone; a weight of 0 is not dense alone)."""
    sums: dict[str, float] = {}
    for c in cands:
        hits = c.lexical if fusion is None else fusion.fuse(c.lexical, c.dense)
        for key, val in score(ranked_docs([h.doc_id for h in hits]), c.relevant).items():
            sums[key] = sums.get(key, 0.0) + val
    n = max(len(cands), 1)
    return {k: round(v / n, 4) for k, v in sums.items()}


def grid() -> list[Fusion]:
    out = [Fusion("score", w) for w in WEIGHTS]
    out += [Fusion("rrf", w, k) for w in WEIGHTS for k in RRF_KS]
    return out


def tune(cands: list[Candidates], target: str = "recall@5") -> dict[str, Any]:
    """Every setting's metrics and the best one by ``target`` (ties: the earlier setting)."""
    scored = [(f, metrics(cands, f)) for f in grid()]
    best_f, best_m = max(scored, key=lambda fm: fm[1][target])
    rows: list[dict[str, Any]] = [asdict(f) | m for f, m in scored]
    best = asdict(best_f) | best_m
    dense_only = metrics([Candidates(c.relevant, c.dense, []) for c in cands], None)
    return {
        "queries": len(cands),
        "lexical": metrics(cands, None),
        "dense": dense_only,
        "best": best,
        "grid": rows,
    }
