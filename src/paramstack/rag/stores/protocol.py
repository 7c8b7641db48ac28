"""The store protocol: every call is scoped by ``tenant`` (from the authenticated key).

The scale-out stores hold every tenant in one collection or table (Qdrant's multitenancy
advice: an ``is_tenant`` payload index) with the (tenant, collection) pair as a mandatory filter
on every read, write and delete; the embedded edge store gives each pair its own shard (a
directory), so the pair picks the shard. Either way point ids are derived from the pair, so a
document id or a chunk id from another tenant can never address a point of this one.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from paramstack.rag.types import Hit, StoredChunk

_NS = uuid.UUID("5b1c3f5e-6a43-4c0e-9f1e-7d0a2f0c9b11")
Filters = dict[str, str | int | bool]
# tenant and collection names; also directory names in the edge store (no ".", "..", hidden)
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class CollectionInfo:
    """What a collection records about itself: the embedder it was built with."""

    embedder: str
    dim: int


class Store(Protocol):
    def get_collection(self, tenant: str, collection: str) -> CollectionInfo | None: ...

    def create_collection(self, tenant: str, collection: str, info: CollectionInfo) -> None: ...

    def upsert(self, tenant: str, collection: str, items: list[StoredChunk]) -> None: ...

    def doc_version(self, tenant: str, collection: str, doc_id: str) -> str | None: ...

    def delete_document(
        self, tenant: str, collection: str, doc_id: str, keep_version: str | None = None
    ) -> int:
        """Remove a document's chunks (all, or all but ``keep_version``); returns how many."""

    def count(self, tenant: str, collection: str, doc_id: str | None = None) -> int: ...

    def dense_search(
        self, tenant: str, collection: str, vector: list[float], k: int, filters: Filters
    ) -> list[Hit]: ...

    def lexical_search(
        self, tenant: str, collection: str, text: str, k: int, filters: Filters
    ) -> list[Hit]:
        """BM25-style hits for ``text`` (each engine keeps its own lexical representation)."""

    def documents(self, tenant: str, collection: str) -> dict[str, str]:
        """doc_id → version of every document in the collection."""

    def close(self) -> None: ...


def point_id(tenant: str, collection: str, chunk_id: str, version: str) -> str:
    """Deterministic, tenant-bound point id (re-upserting the same chunk overwrites it)."""
    return str(uuid.uuid5(_NS, f"{tenant}\x00{collection}\x00{chunk_id}\x00{version}"))


def dense_name(dim: int) -> str:
    return f"dense{dim}"


def payload_of(tenant: str, collection: str, item: StoredChunk) -> dict[str, Any]:
    c = item.chunk
    return {
        "tenant": tenant,
        "collection": collection,
        "doc_id": c.doc_id,
        "version": c.version,
        "index": c.index,
        "text": c.text,
        "start": c.start,
        "end": c.end,
        "source": c.source,
        "meta": c.metadata,
    }


def hit_of(payload: dict[str, Any], score: float) -> Hit:
    return Hit(
        chunk_id=f"{payload['doc_id']}#{payload['index']}",
        doc_id=payload["doc_id"],
        version=payload["version"],
        index=int(payload["index"]),
        text=payload["text"],
        start=int(payload["start"]),
        end=int(payload["end"]),
        source=payload["source"],
        score=float(score),
        metadata=dict(payload.get("meta") or {}),
    )


def open_store(url: str) -> Store:
    """A store from a URL: a directory path → embedded Qdrant edge; ``qdrant+local://<dir>``
    → qdrant-client local mode; ``http(s)://`` → a Qdrant server; ``postgresql://`` → pgvector."""
    if url.startswith(("http://", "https://", "qdrant+local://", ":memory:")):
        from paramstack.rag.stores.qdrant_server import QdrantClientStore

        store: Store = QdrantClientStore(url)
        return store
    if url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        from paramstack.rag.stores.pgvector import PgVectorStore

        pg: Store = PgVectorStore(url)
        return pg
    from paramstack.rag.stores.edge import EdgeStore

    return EdgeStore(url.removeprefix("edge://"))
