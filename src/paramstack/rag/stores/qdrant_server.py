"""The scale-out path: a Qdrant server through ``qdrant-client`` (one collection per vector size,
shared by every tenant, with an ``is_tenant`` keyword index on ``tenant``).

``qdrant+local://<dir>`` (or ``:memory:``) runs the same code against qdrant-client's local
mode: the same API, brute force in Python, which is how the tests exercise this path where
no Qdrant server can be installed. Local mode is not for production (slow past ~20k points).
"""

from __future__ import annotations

import uuid
from typing import Any

from qdrant_client import QdrantClient, models

from paramstack.rag.stores.protocol import CollectionInfo, Filters, hit_of, payload_of, point_id
from paramstack.rag.textproc import query_sparse
from paramstack.rag.types import Hit, StoredChunk

META = "paramstack_rag_meta"
LEX = "lex"
DENSE = "dense"


def _scope(
    tenant: str, collection: str, filters: Filters | None = None, **extra: Any
) -> models.Filter:
    pairs = [("tenant", tenant), ("collection", collection), *extra.items()]
    pairs += [(f"meta.{k}", v) for k, v in (filters or {}).items()]
    return models.Filter(
        must=[models.FieldCondition(key=k, match=models.MatchValue(value=v)) for k, v in pairs]
    )


class QdrantClientStore:
    def __init__(self, url: str) -> None:
        if url.startswith("qdrant+local://"):
            self._client = QdrantClient(path=url.removeprefix("qdrant+local://"))
        elif url == ":memory:":
            self._client = QdrantClient(location=":memory:")
        else:
            self._client = QdrantClient(url=url)
        if not self._client.collection_exists(META):
            self._client.create_collection(
                META, vectors_config=models.VectorParams(size=1, distance=models.Distance.DOT)
            )

    def _data(self, dim: int) -> str:
        name = f"paramstack_rag_d{dim}"
        if not self._client.collection_exists(name):
            self._client.create_collection(
                name,
                vectors_config={
                    DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)
                },
                sparse_vectors_config={
                    LEX: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
            )
            tenant_index = models.KeywordIndexParams(
                type=models.KeywordIndexType.KEYWORD, is_tenant=True
            )
            self._client.create_payload_index(name, "tenant", field_schema=tenant_index)
            for field in ("collection", "doc_id"):
                self._client.create_payload_index(
                    name, field, field_schema=models.PayloadSchemaType.KEYWORD
                )
        return name

    def _name(self, tenant: str, collection: str) -> str | None:
        info = self.get_collection(tenant, collection)
        return self._data(info.dim) if info else None

    @staticmethod
    def _meta_id(tenant: str, collection: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"paramstack-rag:{tenant}/{collection}"))

    def get_collection(self, tenant: str, collection: str) -> CollectionInfo | None:
        recs = self._client.retrieve(META, [self._meta_id(tenant, collection)], with_payload=True)
        if not recs or not recs[0].payload:
            return None
        return CollectionInfo(str(recs[0].payload["embedder"]), int(recs[0].payload["dim"]))

    def create_collection(self, tenant: str, collection: str, info: CollectionInfo) -> None:
        self._data(info.dim)
        payload = {
            "tenant": tenant,
            "collection": collection,
            "embedder": info.embedder,
            "dim": info.dim,
        }
        point = models.PointStruct(
            id=self._meta_id(tenant, collection), vector=[1.0], payload=payload
        )
        self._client.upsert(META, [point])

    def upsert(self, tenant: str, collection: str, items: list[StoredChunk]) -> None:
        name = self._name(tenant, collection)
        if name is None or not items:
            return
        points = [
            models.PointStruct(
                id=point_id(tenant, collection, it.chunk.chunk_id, it.chunk.version),
                vector={
                    DENSE: it.dense,
                    LEX: models.SparseVector(indices=it.sparse.indices, values=it.sparse.values),
                },
                payload=payload_of(tenant, collection, it),
            )
            for it in items
        ]
        self._client.upsert(name, points)

    def delete_document(
        self, tenant: str, collection: str, doc_id: str, keep_version: str | None = None
    ) -> int:
        name = self._name(tenant, collection)
        if name is None:
            return 0
        flt = _scope(tenant, collection, doc_id=doc_id)
        if keep_version is not None:
            flt.must_not = [
                models.FieldCondition(key="version", match=models.MatchValue(value=keep_version))
            ]
        n = self._client.count(name, count_filter=flt, exact=True).count
        if n:
            self._client.delete(name, points_selector=models.FilterSelector(filter=flt))
        return int(n)

    def doc_version(self, tenant: str, collection: str, doc_id: str) -> str | None:
        name = self._name(tenant, collection)
        if name is None:
            return None
        recs, _ = self._client.scroll(
            name, scroll_filter=_scope(tenant, collection, doc_id=doc_id), limit=1
        )
        return str(recs[0].payload["version"]) if recs and recs[0].payload else None

    def count(self, tenant: str, collection: str, doc_id: str | None = None) -> int:
        name = self._name(tenant, collection)
        if name is None:
            return 0
        extra = {"doc_id": doc_id} if doc_id is not None else {}
        return int(
            self._client.count(
                name, count_filter=_scope(tenant, collection, None, **extra), exact=True
            ).count
        )

    def documents(self, tenant: str, collection: str) -> dict[str, str]:
        name = self._name(tenant, collection)
        out: dict[str, str] = {}
        offset: Any = None
        while name is not None:
            recs, offset = self._client.scroll(
                name,
                scroll_filter=_scope(tenant, collection),
                limit=1024,
                offset=offset,
                with_payload=["doc_id", "version"],
            )
            out.update(
                {str(r.payload["doc_id"]): str(r.payload["version"]) for r in recs if r.payload}
            )
            if offset is None:
                break
        return out

    def dense_search(
        self, tenant: str, collection: str, vector: list[float], k: int, filters: Filters
    ) -> list[Hit]:
        return self._query(vector, DENSE, tenant, collection, k, filters)

    def lexical_search(
        self, tenant: str, collection: str, text: str, k: int, filters: Filters
    ) -> list[Hit]:
        query = query_sparse(text)
        if not query.indices:
            return []
        sparse = models.SparseVector(indices=query.indices, values=query.values)
        return self._query(sparse, LEX, tenant, collection, k, filters)

    def _query(
        self, q: Any, using: str, tenant: str, collection: str, k: int, filters: Filters
    ) -> list[Hit]:
        name = self._name(tenant, collection)
        if name is None:
            return []
        res = self._client.query_points(
            name,
            query=q,
            using=using,
            limit=k,
            query_filter=_scope(tenant, collection, filters),
            with_payload=True,
        )
        return [hit_of(p.payload or {}, p.score) for p in res.points]

    def close(self) -> None:
        self._client.close()
