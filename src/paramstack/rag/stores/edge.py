"""The embedded default: Qdrant's own engine in-process (``qdrant-edge-py``), one shard per
(tenant, collection).

Layout under the store path::

    layout.json                               {"layout": "shard-per-collection", "version": 2}
    tenants/<tenant>/<collection>/meta.json   the collection's embedder and dimension
    tenants/<tenant>/<collection>/shard/      HNSW + BM25 sparse index (IDF) + WAL

Why a shard per collection instead of one shared shard with an ``is_tenant`` index: a
tenant's BM25 posting lists then hold only its own points (at 10 tenants x 100k chunks the
shared sparse index scanned every tenant's postings and filtered afterwards: lexical p50 12 ms
instead of 2 ms), the IDF is the tenant's own (another tenant's documents no longer shift its
scores), each HNSW graph is built for one tenant, and a tenant's data is one directory —
physical isolation that regulated tenants ask for, and deletion by ``rm -r``. Shards open
lazily and the least recently used are closed once more than ``max_open`` are open.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from paramstack.errors import InvalidInput, ParamstackError
from paramstack.rag.stores.protocol import (
    NAME,
    CollectionInfo,
    Filters,
    dense_name,
    hit_of,
    payload_of,
    point_id,
)
from paramstack.rag.textproc import query_sparse
from paramstack.rag.types import Hit, StoredChunk

LEX = "lex"
LAYOUT = {"layout": "shard-per-collection", "version": 2}
MAX_OPEN = int(os.environ.get("PARAMSTACK_RAG_MAX_OPEN_SHARDS", "64"))


class StoreLayoutError(ParamstackError):
    """The store directory holds the old single-shard layout (or an unknown one): an operator
    must migrate it; nothing is read or written until then."""

    http_status = 503
    default_code = "rag_store_layout"


def filter_of(filters: Filters | None = None, **extra: Any) -> qe.Filter | None:
    """Metadata filters (``meta.<key>``) plus exact payload matches; ``None`` when empty."""
    must: list[Any] = [qe.FieldCondition(k, match=qe.MatchValue(v)) for k, v in extra.items()]
    must += [
        qe.FieldCondition(f"meta.{k}", match=qe.MatchValue(v)) for k, v in (filters or {}).items()
    ]
    return qe.Filter(must=must) if must else None


def shard_config(dim: int) -> qe.EdgeConfig:
    """One dense vector (cosine HNSW) and the BM25 sparse vector with the engine's IDF."""
    return qe.EdgeConfig(
        vectors={dense_name(dim): qe.EdgeVectorParams(dim, qe.Distance.Cosine)},
        sparse_vectors={LEX: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        hnsw_config=qe.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10_000),
    )


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True))
    os.replace(tmp, path)


@dataclass
class _Open:
    shard: qe.EdgeShard
    users: int = 0
    write: threading.Lock = field(default_factory=threading.Lock)


class EdgeStore:
    def __init__(self, path: str | Path, max_open: int = MAX_OPEN) -> None:
        self.path = Path(path)
        self.max_open = max(1, max_open)
        self._root = self.path / "tenants"
        self._lock = threading.Lock()
        self._open: OrderedDict[tuple[str, str], _Open] = OrderedDict()
        self._meta: dict[tuple[str, str], CollectionInfo] = {}
        if (self.path / "shard" / "edge_config.json").exists():
            raise StoreLayoutError(
                f"{self.path} holds the old single-shard RAG layout; convert it once with "
                f"`paramstack rag migrate-store --store {self.path}`"
            )
        marker = self.path / "layout.json"
        if marker.exists():
            found = json.loads(marker.read_text())
            if found != LAYOUT:
                raise StoreLayoutError(f"{self.path}: unknown RAG store layout {found}")
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            _write_json(marker, LAYOUT)

    # layout ------------------------------------------------------------------------------
    def _dir(self, tenant: str, collection: str) -> Path:
        for what, name in (("tenant", tenant), ("collection", collection)):
            if not NAME.match(name):
                raise InvalidInput(f"{what} must match {NAME.pattern}", param=what)
        return self._root / tenant / collection

    @contextmanager
    def _shard(self, tenant: str, collection: str) -> Iterator[_Open | None]:
        """The collection's open shard (``None`` if it has none), pinned while in use so the
        LRU never closes a shard under a running call."""
        key = (tenant, collection)
        shard_dir = self._dir(tenant, collection) / "shard"
        with self._lock:
            entry = self._open.get(key)
            if entry is None:
                if not (shard_dir / "edge_config.json").exists():
                    entry = None
                else:
                    entry = _Open(qe.EdgeShard.load(str(shard_dir)))
                    self._open[key] = entry
            if entry is not None:
                self._open.move_to_end(key)
                entry.users += 1
                self._evict()
        if entry is None:
            yield None
            return
        try:
            yield entry
        finally:
            with self._lock:
                entry.users -= 1
                self._evict()

    def _evict(self) -> None:
        """Close least recently used idle shards beyond ``max_open`` (caller holds the lock)."""
        if len(self._open) <= self.max_open:  # the usual case, on every query: nothing to scan
            return
        idle = [k for k, e in self._open.items() if e.users == 0]
        for key in idle[: max(0, len(self._open) - self.max_open)]:
            entry = self._open.pop(key)
            entry.shard.flush()
            entry.shard.close()

    def open_shards(self) -> int:
        return len(self._open)

    # collections -------------------------------------------------------------------------
    def get_collection(self, tenant: str, collection: str) -> CollectionInfo | None:
        key = (tenant, collection)
        if key not in self._meta:
            meta = self._dir(tenant, collection) / "meta.json"
            if not meta.exists():
                return None
            row = json.loads(meta.read_text())
            self._meta[key] = CollectionInfo(row["embedder"], int(row["dim"]))
        return self._meta[key]

    def create_collection(self, tenant: str, collection: str, info: CollectionInfo) -> None:
        folder = self._dir(tenant, collection)
        with self._lock:
            folder.mkdir(parents=True, exist_ok=True)
            if not (folder / "shard" / "edge_config.json").exists():
                shard = qe.EdgeShard.create(str(folder / "shard"), shard_config(info.dim))
                shard.update(
                    qe.UpdateOperation.create_field_index("doc_id", qe.KeywordIndexParams())
                )
                self._open[(tenant, collection)] = _Open(shard)
                self._evict()
            # the shard first, the record last: a collection with a record always has a shard
            _write_json(folder / "meta.json", {"embedder": info.embedder, "dim": info.dim})
            self._meta[(tenant, collection)] = info

    # writes ------------------------------------------------------------------------------
    def upsert(self, tenant: str, collection: str, items: list[StoredChunk]) -> None:
        points = [
            qe.Point(
                point_id(tenant, collection, it.chunk.chunk_id, it.chunk.version),
                {
                    dense_name(len(it.dense)): it.dense,
                    LEX: qe.SparseVector(it.sparse.indices, it.sparse.values),
                },
                payload_of(tenant, collection, it),
            )
            for it in items
        ]
        with self._shard(tenant, collection) as entry:
            if entry is None:
                raise InvalidInput(f"no collection {collection!r}: create it first")
            with entry.write:
                entry.shard.update(qe.UpdateOperation.upsert_points(points))

    def upsert_points(self, tenant: str, collection: str, points: list[qe.Point]) -> None:
        """Raw points (ids, vectors and payloads as stored): the migration's write path."""
        with self._shard(tenant, collection) as entry:
            if entry is None:
                raise InvalidInput(f"no collection {collection!r}: create it first")
            with entry.write:
                entry.shard.update(qe.UpdateOperation.upsert_points(points))

    def delete_document(
        self, tenant: str, collection: str, doc_id: str, keep_version: str | None = None
    ) -> int:
        flt = filter_of(doc_id=doc_id)
        assert flt is not None
        if keep_version is not None:
            flt = qe.Filter(
                must=flt.must,
                must_not=[qe.FieldCondition("version", match=qe.MatchValue(keep_version))],
            )
        with self._shard(tenant, collection) as entry:
            if entry is None:
                return 0
            with entry.write:
                n = int(entry.shard.count(qe.CountRequest(exact=True, filter=flt)))
                if n:
                    entry.shard.update(qe.UpdateOperation.delete_points_by_filter(flt))
        return n

    # reads -------------------------------------------------------------------------------
    def doc_version(self, tenant: str, collection: str, doc_id: str) -> str | None:
        with self._shard(tenant, collection) as entry:
            if entry is None:
                return None
            recs, _ = entry.shard.scroll(
                qe.ScrollRequest(limit=1, filter=filter_of(doc_id=doc_id), with_payload=True)
            )
        return str(recs[0].payload["version"]) if recs and recs[0].payload else None

    def count(self, tenant: str, collection: str, doc_id: str | None = None) -> int:
        flt = filter_of(doc_id=doc_id) if doc_id is not None else None
        with self._shard(tenant, collection) as entry:
            if entry is None:
                return 0
            return int(entry.shard.count(qe.CountRequest(exact=True, filter=flt)))

    def documents(self, tenant: str, collection: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for rec in self.scroll(tenant, collection, with_vector=False):
            if rec.payload:
                out[str(rec.payload["doc_id"])] = str(rec.payload["version"])
        return out

    def scroll(self, tenant: str, collection: str, with_vector: bool = True) -> Iterator[Any]:
        """Every point of the collection (records with payload, and vectors if asked)."""
        offset: Any = None
        while True:
            with self._shard(tenant, collection) as entry:
                if entry is None:
                    return
                recs, offset = entry.shard.scroll(
                    qe.ScrollRequest(
                        offset=offset, limit=1024, with_payload=True, with_vector=with_vector
                    )
                )
            yield from recs
            if offset is None:
                return

    def dense_search(
        self, tenant: str, collection: str, vector: list[float], k: int, filters: Filters
    ) -> list[Hit]:
        return self._query(
            qe.Query.Nearest(vector, using=dense_name(len(vector))), tenant, collection, k, filters
        )

    def lexical_search(
        self, tenant: str, collection: str, text: str, k: int, filters: Filters
    ) -> list[Hit]:
        query = query_sparse(text)
        if not query.indices:
            return []
        sparse = qe.SparseVector(query.indices, query.values)
        return self._query(qe.Query.Nearest(sparse, using=LEX), tenant, collection, k, filters)

    def _query(self, q: Any, tenant: str, collection: str, k: int, filters: Filters) -> list[Hit]:
        req = qe.QueryRequest(limit=k, query=q, filter=filter_of(filters), with_payload=True)
        with self._shard(tenant, collection) as entry:
            if entry is None:
                return []
            found = entry.shard.query(req)
        return [hit_of(p.payload or {}, p.score) for p in found]

    def collections(self) -> list[tuple[str, str]]:
        """Every (tenant, collection) with a record here."""
        found = self._root.glob("*/*/meta.json") if self._root.exists() else []
        return sorted((m.parent.parent.name, m.parent.name) for m in found)

    def optimize(self) -> None:
        """Build every shard's HNSW index now (after a bulk load), not on the first queries."""
        for tenant, collection in self.collections():
            self.optimize_collection(tenant, collection)

    def optimize_collection(self, tenant: str, collection: str) -> None:
        with self._shard(tenant, collection) as entry:
            if entry is not None:
                with entry.write:
                    entry.shard.optimize()

    def close(self) -> None:
        with self._lock:
            for entry in self._open.values():
                entry.shard.flush()
                entry.shard.close()
            self._open.clear()
