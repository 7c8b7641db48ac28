"""An on-disk cache of embeddings, so re-running an evaluation or a re-ingest is cheap.

Embedding is the slow step (a few Turkish passages per second per core), and an evaluation is
re-run many times while its chunking, fusion and store stay the same. Vectors are keyed by the
embedder spec, the side (query or passage: e5 embeds them with different prefixes) and the
SHA-256 of the text, in one SQLite file per spec; the wrapper keeps the inner embedder's
``spec`` and ``dim``, so a collection built through the cache records the real model.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from pathlib import Path

import numpy as np

from paramstack.rag.embedders import Embedder, Matrix


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CachedEmbedder:
    """``inner`` with its vectors remembered in ``<folder>/<spec>.sqlite``."""

    def __init__(self, inner: Embedder, folder: Path) -> None:
        self.inner = inner
        self.spec = inner.spec
        self.dim = inner.dim
        folder.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", inner.spec)
        self._db = sqlite3.connect(folder / f"{name}.sqlite", check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vec (side TEXT, sha TEXT, v BLOB, PRIMARY KEY (side, sha))"
        )
        self._db.commit()
        self._lock = threading.Lock()

    def _get(self, side: str, texts: list[str]) -> Matrix:
        keys = [_key(t) for t in texts]
        found: dict[str, bytes] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                part = keys[i : i + 500]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    f"SELECT sha, v FROM vec WHERE side = ? AND sha IN ({marks})",  # noqa: S608
                    [side, *part],
                ).fetchall()
                found.update({str(sha): bytes(v) for sha, v in rows})
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            if side == "q":
                fresh = self.inner.query(texts[missing[0]])
            else:
                fresh = self.inner.passages([texts[i] for i in missing])
            with self._lock:
                for row, i in zip(fresh, missing, strict=True):
                    blob = np.asarray(row, np.float32).tobytes()
                    found[keys[i]] = blob
                    self._db.execute(
                        "INSERT OR REPLACE INTO vec VALUES (?, ?, ?)", (side, keys[i], blob)
                    )
                self._db.commit()
        out = np.stack([np.frombuffer(found[k], np.float32) for k in keys])
        return out.astype(np.float32)

    def passages(self, texts: list[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return self._get("p", texts)

    def query(self, text: str) -> Matrix:
        return self._get("q", [text])

    def close(self) -> None:
        with self._lock:
            self._db.close()
