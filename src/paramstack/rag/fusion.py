"""Reciprocal-rank fusion: ranks, not raw scores, so BM25 and cosine need no calibration."""

from __future__ import annotations

from collections.abc import Sequence

from paramstack.rag.types import Hit

RRF_K = 60


def rrf(rankings: Sequence[Sequence[Hit]], k: int = RRF_K) -> list[Hit]:
    """Fused list, best first; a hit's score becomes Σ 1/(k + rank) over the lists it is in."""
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, 1):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1.0 / (k + rank)
            first.setdefault(hit.chunk_id, hit)
    fused = []
    for cid, score in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])):
        hit = first[cid]
        fused.append(
            Hit(
                hit.chunk_id,
                hit.doc_id,
                hit.version,
                hit.index,
                hit.text,
                hit.start,
                hit.end,
                hit.source,
                score,
                hit.metadata,
            )
        )
    return fused
