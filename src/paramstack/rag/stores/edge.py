"""The embedded default: Qdrant's own engine in-process (``qdrant-edge-py``).

HNSW for dense vectors, an inverted index with an IDF modifier for the BM25 sparse vectors, a
keyword payload index on ``tenant`` with ``is_tenant`` (Qdrant co-locates and indexes each
tenant's points) and a WAL, all persisted under one directory on one machine. The collection
registry (embedder per collection) is a small JSON file beside the shard, written atomically.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from paramstack.rag.stores.protocol import (
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


def scope(tenant: str, collection: str, filters: Filters | None = None, **extra: Any) -> qe.Filter:
    """The mandatory tenant + collection filter, plus metadata filters (``meta.<key>``)."""
    must: list[Any] = [
        qe.FieldCondition("tenant", match=qe.MatchValue(tenant)),
        qe.FieldCondition("collection", match=qe.MatchValue(collection)),
    ]
    must += [qe.FieldCondition(k, match=qe.MatchValue(v)) for k, v in extra.items()]
    must += [
        qe.FieldCondition(f"meta.{k}", match=qe.MatchValue(v)) for k, v in (filters or {}).items()
    ]
    return qe.Filter(must=must)


class EdgeStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._shard_dir = self.path / "shard"
        self._meta_file = self.path / "collections.json"
        self._lock = threading.Lock()
        if (self._shard_dir / "edge_config.json").exists():
            self._shard = qe.EdgeShard.load(str(self._shard_dir))
        else:
            self._shard_dir.mkdir(parents=True, exist_ok=True)
            config = qe.EdgeConfig(
                vectors={},
                sparse_vectors={LEX: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
                # Qdrant's multitenant layout: no global graph (m=0), one HNSW graph per tenant
                # (payload_m) on the is_tenant field; every query is tenant-filtered anyway.
                hnsw_config=qe.HnswIndexConfig(
                    m=0, ef_construct=100, full_scan_threshold=10_000, payload_m=16
                ),
            )
            self._shard = qe.EdgeShard.create(str(self._shard_dir), config)
            for field in ("tenant", "collection"):
                params = qe.KeywordIndexParams(is_tenant=field == "tenant")
                self._shard.update(qe.UpdateOperation.create_field_index(field, params))
            self._shard.update(
                qe.UpdateOperation.create_field_index("doc_id", qe.KeywordIndexParams())
            )
        self._meta: dict[str, dict[str, Any]] = (
            json.loads(self._meta_file.read_text()) if self._meta_file.exists() else {}
        )

    # collections -------------------------------------------------------------------------
    def get_collection(self, tenant: str, collection: str) -> CollectionInfo | None:
        row = self._meta.get(f"{tenant}/{collection}")
        return CollectionInfo(row["embedder"], int(row["dim"])) if row else None

    def create_collection(self, tenant: str, collection: str, info: CollectionInfo) -> None:
        with self._lock:
            if info.dim not in {int(v["dim"]) for v in self._meta.values()}:
                op = qe.UpdateOperation.create_dense_vector(
                    dense_name(info.dim), info.dim, qe.Distance.Cosine
                )
                self._shard.update(op)
            self._meta[f"{tenant}/{collection}"] = {"embedder": info.embedder, "dim": info.dim}
            tmp = self._meta_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._meta, indent=1, sort_keys=True))
            os.replace(tmp, self._meta_file)

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
        with self._lock:
            self._shard.update(qe.UpdateOperation.upsert_points(points))

    def delete_document(
        self, tenant: str, collection: str, doc_id: str, keep_version: str | None = None
    ) -> int:
        flt = scope(tenant, collection, doc_id=doc_id)
        if keep_version is not None:
            flt = qe.Filter(
                must=flt.must,
                must_not=[qe.FieldCondition("version", match=qe.MatchValue(keep_version))],
            )
        with self._lock:
            n = self._shard.count(qe.CountRequest(exact=True, filter=flt))
            if n:
                self._shard.update(qe.UpdateOperation.delete_points_by_filter(flt))
        return n

    # reads -------------------------------------------------------------------------------
    def doc_version(self, tenant: str, collection: str, doc_id: str) -> str | None:
        recs, _ = self._shard.scroll(
            qe.ScrollRequest(
                limit=1, filter=scope(tenant, collection, doc_id=doc_id), with_payload=True
            )
        )
        return str(recs[0].payload["version"]) if recs and recs[0].payload else None

    def count(self, tenant: str, collection: str, doc_id: str | None = None) -> int:
        extra = {"doc_id": doc_id} if doc_id is not None else {}
        return int(
            self._shard.count(
                qe.CountRequest(exact=True, filter=scope(tenant, collection, None, **extra))
            )
        )

    def documents(self, tenant: str, collection: str) -> dict[str, str]:
        out: dict[str, str] = {}
        offset: Any = None
        while True:
            recs, offset = self._shard.scroll(
                qe.ScrollRequest(
                    offset=offset,
                    limit=1024,
                    filter=scope(tenant, collection),
                    with_payload=["doc_id", "version"],
                )
            )
            for r in recs:
                if r.payload:
                    out[str(r.payload["doc_id"])] = str(r.payload["version"])
            if offset is None:
                return out

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
        req = qe.QueryRequest(
            limit=k, query=q, filter=scope(tenant, collection, filters), with_payload=True
        )
        return [hit_of(p.payload or {}, p.score) for p in self._shard.query(req)]

    def optimize(self) -> None:
        """Build the HNSW index now (after a bulk load) instead of on the first slow queries."""
        with self._lock:
            self._shard.optimize()

    def close(self) -> None:
        with self._lock:
            self._shard.flush()
            self._shard.close()
