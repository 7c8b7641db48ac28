"""Hybrid retrieval variants on the development set, each beside today's fusion in the same run.

    PYTHONPATH=src .venv/bin/python bench/rag_variants.py --dev var/devset2 \
        --exclude var/evalset/queries.jsonl

A study for issue 9's "+10 % over the best single retriever" target, run on the development
set only (test queries dropped by ``--exclude``), so the reported set stays untouched until a
variant is chosen. Everything is computed in memory on exact scores: BM25 exactly as the
stores compute it (the same hashed 5-letter prefix terms, saturated tf, Qdrant's IDF
``ln(1 + (N - n + 0.5) / (n + 0.5))``), exact cosine for use-m3 (a dev store of ~3k chunks is
below the HNSW full-scan threshold anyway), 80 candidates per list as ``tune`` fetches them.
Variants: dense pseudo-relevance feedback from the top lexical hits, a second lexical analyser
(whole words), re-scoring every candidate of either list with both scores, and sentence windows
(max-sim over ~150-300 character windows of each chunk). Each prints its best setting on a
small grid (an optimistic figure: the grid is chosen on the same dev queries).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from semantic_text_splitter import TextSplitter

from paramstack.rag.chunking import chunk_document
from paramstack.rag.embed_cache import CachedEmbedder
from paramstack.rag.embedders import get_embedder
from paramstack.rag.evaluate import read_queries
from paramstack.rag.loaders import make_document
from paramstack.rag.textproc import AVG_TERMS, K1, B, terms

DEPTH = 80
List = tuple[np.ndarray, np.ndarray]  # candidate indices, their scores (best first)


def bm25(texts: list[str], queries: list[str], tok: Callable[[str], list[str]]) -> np.ndarray:
    vocab: dict[str, int] = {}
    rows, cols, vals = [], [], []
    for i, text in enumerate(texts):
        counts = Counter(tok(text))
        norm = K1 * (1 - B + B * sum(counts.values()) / AVG_TERMS)
        for term, tf in counts.items():
            rows.append(i)
            cols.append(vocab.setdefault(term, len(vocab)))
            vals.append(tf * (K1 + 1) / (tf + norm))
    m = sp.csr_matrix((vals, (rows, cols)), shape=(len(texts), len(vocab)))
    df = np.bincount(cols, minlength=len(vocab))
    idf = np.log(1 + (len(texts) - df + 0.5) / (df + 0.5))
    out = np.zeros((len(queries), len(texts)), np.float32)
    for q, text in enumerate(queries):
        ids = sorted({vocab[t] for t in tok(text) if t in vocab})
        if ids:
            out[q] = np.asarray(m[:, ids] @ idf[ids]).ravel()
    return out


def top(scores: np.ndarray, positive: bool = False) -> List:
    idx = np.argpartition(-scores, DEPTH)[:DEPTH]
    idx = idx[np.argsort(-scores[idx])]
    if positive:
        idx = idx[scores[idx] > 0]
    return idx, scores[idx]


def minmax(v: np.ndarray) -> np.ndarray:
    span = float(v.max() - v.min()) if len(v) else 0.0
    return (v - v.min()) / span if span > 0 else np.ones_like(v)


def fuse(lists: list[List], weights: list[float]) -> list[int]:
    """Today's ``score`` fusion: Σ w · min-max(score) over each list's own candidates."""
    acc: dict[int, float] = {}
    for (idx, vals), w in zip(lists, weights, strict=True):
        for i, v in zip(idx.tolist(), minmax(vals).tolist(), strict=True):
            acc[i] = acc.get(i, 0.0) + w * v
    return [i for i, _ in sorted(acc.items(), key=lambda kv: -kv[1])]


class Dev:
    def __init__(self, folder: Path, exclude: Path | None, cache: Path) -> None:
        self.chunks: list[tuple[str, str]] = []
        for line in (folder / "corpus.jsonl").open(encoding="utf-8"):
            row = json.loads(line)
            doc = make_document(row["id"], row["text"], "dev")
            self.chunks += [(c.doc_id, c.text) for c in chunk_document(doc, 1200, 100)]
        queries = read_queries(folder / "queries.jsonl")
        if exclude is not None:
            held = {q.query for q in read_queries(exclude)}
            queries = [q for q in queries if q.query not in held]
        self.queries = [q.query for q in queries]
        self.relevant = [q.relevant for q in queries]
        self.doc_ids = [d for d, _ in self.chunks]
        self.emb = CachedEmbedder(get_embedder("use-m3"), cache)
        self.D = self._unit(self.emb.passages([t for _, t in self.chunks]))
        self.Q = self._unit(np.concatenate([self.emb.query(q) for q in self.queries]))
        texts = [t for _, t in self.chunks]
        self.lex5 = bm25(texts, self.queries, terms)
        self.lexw = bm25(texts, self.queries, lambda t: terms(t, 1000))
        self.cos = self.Q @ self.D.T

    @staticmethod
    def _unit(m: np.ndarray) -> np.ndarray:
        return np.asarray(m / np.linalg.norm(m, axis=1, keepdims=True), np.float32)

    def recall5(self, rank: Callable[[int], list[int]]) -> float:
        total = 0.0
        for q, rel in enumerate(self.relevant):
            docs: list[str] = []
            for i in rank(q):
                if self.doc_ids[i] not in docs:
                    docs.append(self.doc_ids[i])
                if len(docs) == 5:
                    break
            total += len(rel & set(docs)) / len(rel)
        return round(total / len(self.relevant), 4)

    def windows(self) -> np.ndarray:
        """Max cosine over each chunk's sentence windows (queries x chunks)."""
        splitter = TextSplitter((150, 300))
        owner, wins = [], []
        for i, (_, text) in enumerate(self.chunks):
            for w in splitter.chunks(text):
                owner.append(i)
                wins.append(w)
        sims = self.Q @ self._unit(self.emb.passages(wins)).T
        out = np.full((len(self.queries), len(self.chunks)), -1.0, np.float32)
        for j, i in enumerate(owner):
            out[:, i] = np.maximum(out[:, i], sims[:, j])
        return out


def study(dev: Dev) -> dict[str, Any]:
    n = len(dev.queries)
    lex = [top(dev.lex5[q], positive=True) for q in range(n)]
    den = [top(dev.cos[q]) for q in range(n)]
    res: dict[str, Any] = {
        "queries": n,
        "lexical": dev.recall5(lambda q: lex[q][0].tolist()),
        "dense": dev.recall5(lambda q: den[q][0].tolist()),
        "hybrid_today": dev.recall5(lambda q: fuse([lex[q], den[q]], [1, 0.4])),
    }
    best: dict[str, tuple[float, str]] = {}

    def keep(name: str, setting: str, value: float) -> None:
        if value > best.get(name, (-1.0, ""))[0]:
            best[name] = (value, setting)

    for m in (3, 5, 10):
        for beta in (0.5, 1.0, 2.0):
            prf = []
            for q in range(n):
                vec = dev.Q[q] + beta * dev.D[lex[q][0][:m]].mean(0) if len(lex[q][0]) else dev.Q[q]
                prf.append(top(dev.D @ (vec / np.linalg.norm(vec))))
            for w in (0.2, 0.4, 0.6, 1.0):
                keep(
                    "dense_prf",
                    f"m={m} beta={beta} w={w}",
                    dev.recall5(lambda q, w=w, prf=prf: fuse([lex[q], prf[q]], [1, w])),
                )
                keep(
                    "dense_prf_plus_dense",
                    f"m={m} beta={beta} w={w}",
                    dev.recall5(
                        lambda q, w=w, prf=prf: fuse([lex[q], den[q], prf[q]], [1, 0.4, w])
                    ),
                )
    whole = [top(dev.lexw[q], positive=True) for q in range(n)]
    for w2 in (0.3, 0.5, 1.0):
        for wd in (0.3, 0.4, 0.6):
            keep(
                "second_analyser_whole_words",
                f"w_words={w2} w_dense={wd}",
                dev.recall5(lambda q, a=w2, b=wd: fuse([lex[q], whole[q], den[q]], [1, a, b])),
            )
    for w in (0.3, 0.4, 0.5, 0.7):

        def union(q: int, w: float = w) -> list[int]:
            cand = np.union1d(lex[q][0], den[q][0])
            s = minmax(dev.lex5[q][cand]) + w * minmax(dev.cos[q][cand])
            return cand[np.argsort(-s)].tolist()

        keep("rescore_union_both_scores", f"w={w}", dev.recall5(union))
    win = dev.windows()
    for name, mat in (
        ("windows_maxsim", win),
        ("windows_maxsim_plus_chunk", 0.5 * win + 0.5 * dev.cos),
    ):
        wl = [top(mat[q]) for q in range(n)]
        res[f"{name}_dense_alone"] = dev.recall5(lambda q, wl=wl: wl[q][0].tolist())
        for w in (0.3, 0.4, 0.5, 0.7):
            keep(name, f"w={w}", dev.recall5(lambda q, wl=wl, w=w: fuse([lex[q], wl[q]], [1, w])))
    res["variants"] = {k: {"recall@5": v, "setting": s} for k, (v, s) in best.items()}
    return res


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dev", type=Path, default=Path("var/devset2"))
    ap.add_argument("--exclude", type=Path, default=Path("var/evalset/queries.jsonl"))
    ap.add_argument("--embed-cache", type=Path, default=Path("var/embcache"))
    ap.add_argument("--out", type=Path, default=Path("bench/results/rag_variants.json"))
    args = ap.parse_args()
    res = study(Dev(args.dev, args.exclude, args.embed_cache))
    base = max(res["lexical"], res["dense"])
    print(f"{res['queries']} dev queries; recall@5 lexical {res['lexical']} dense {res['dense']}")
    today = res["hybrid_today"]
    print(f"  hybrid today (score, w 0.4)       {today}  {today / base - 1:+.1%}")
    for name, row in res["variants"].items():
        print(
            f"  {name:<32} {row['recall@5']}  {row['recall@5'] / base - 1:+.1%}  ({row['setting']})"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
