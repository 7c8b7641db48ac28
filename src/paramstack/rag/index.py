"""Ingest, query and delete for one tenant's collection: the library's front door.

The collection is bound to one embedder on first ingest and refuses any other, because
vectors from two models live in different spaces and would silently mis-rank. A document is
replaced, never duplicated: new chunks are written first, then every chunk of an older
version is deleted, so a reader sees the old or the new document and never neither.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from paramstack.errors import Conflict, InvalidInput, NotFound
from paramstack.rag.chunking import chunk_document
from paramstack.rag.embedders import DEFAULT_SPEC, Embedder, get_embedder
from paramstack.rag.fusion import DEFAULT_FUSION, Fusion
from paramstack.rag.stores.protocol import NAME, CollectionInfo, Filters, Store
from paramstack.rag.textproc import doc_sparse
from paramstack.rag.types import Document, Hit, StoredChunk

MODES = ("hybrid", "lexical", "dense")
T = TypeVar("T")
Reranker = Callable[[str, list[Hit]], list[Hit]]


@dataclass
class IngestStats:
    documents: int = 0
    skipped: int = 0
    replaced: int = 0
    chunks: int = 0
    seconds: float = 0.0
    doc_ids: list[str] = field(default_factory=list)

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds if self.seconds else 0.0


def check_name(value: str, what: str) -> str:
    if not NAME.match(value):
        raise InvalidInput(f"{what} must match {NAME.pattern}", param=what)
    return value


def _scrub(text: str) -> str:
    from paramstack.guard.pii import PatternRecognizer, detect, mask

    return mask(text, detect(text, [PatternRecognizer()]))


class RagIndex:
    """One tenant's view of a store: every call passes ``tenant`` down, never a caller's value."""

    def __init__(
        self,
        store: Store,
        tenant: str,
        collection: str = "default",
        embedder: Embedder | None = None,
    ) -> None:
        """``embedder`` replaces the process-wide one of the same spec (e.g. a cached one)."""
        self.store = store
        self.tenant = check_name(tenant, "tenant")
        self.collection = check_name(collection, "collection")
        self._own = embedder

    # embedder binding ------------------------------------------------------------------
    def info(self) -> CollectionInfo | None:
        return self.store.get_collection(self.tenant, self.collection)

    def embedder(self, spec: str | None = None) -> Embedder:
        """The collection's embedder; a different ``spec`` than the recorded one is refused."""
        info = self.info()
        if info is not None and spec is not None and spec != info.embedder:
            raise Conflict(
                f"collection {self.collection!r} was built with {info.embedder!r}; "
                f"refusing {spec!r} (re-create the collection to change models)",
                code="embedder_mismatch",
                param="embedder",
            )
        wanted = spec or (info.embedder if info else None)
        if self._own is not None and wanted in (None, self._own.spec):
            return self._own
        return get_embedder(wanted or DEFAULT_SPEC)

    def _bind(self, embedder: Embedder) -> None:
        info = self.info()
        if info is None:
            self.store.create_collection(
                self.tenant, self.collection, CollectionInfo(embedder.spec, embedder.dim)
            )
        elif info.embedder != embedder.spec or info.dim != embedder.dim:
            raise Conflict(
                f"collection {self.collection!r} was built with {info.embedder!r}",
                code="embedder_mismatch",
                param="embedder",
            )

    # writes ------------------------------------------------------------------------------
    def ingest(
        self,
        docs: Iterable[Document],
        embedder: Embedder | None = None,
        *,
        chunk_size: int = 800,
        overlap: int = 100,
        scrub_pii: bool = False,
        batch: int = 32,
        on_doc: Callable[[Document, int], None] | None = None,
    ) -> IngestStats:
        """Chunk, embed and store ``docs``; unchanged documents (same version) are skipped,
        which also makes an interrupted run resumable."""
        emb = embedder or self.embedder()
        self._bind(emb)
        stats = IngestStats()
        t0 = time.perf_counter()
        for doc in docs:
            if scrub_pii:
                from paramstack.rag.loaders import make_document

                doc = make_document(doc.doc_id, _scrub(doc.text), doc.source, doc.metadata)
            old = self.store.doc_version(self.tenant, self.collection, doc.doc_id)
            if old == doc.version:
                stats.skipped += 1
                if on_doc:
                    on_doc(doc, 0)
                continue
            chunks = chunk_document(doc, chunk_size, overlap)
            for part in _batches(chunks, batch):
                vectors = emb.passages([c.text for c in part])
                items = [
                    StoredChunk(c, vectors[i].tolist(), doc_sparse(c.text))
                    for i, c in enumerate(part)
                ]
                self.store.upsert(self.tenant, self.collection, items)
            if old is not None:
                self.store.delete_document(self.tenant, self.collection, doc.doc_id, doc.version)
                stats.replaced += 1
            stats.documents += 1
            stats.chunks += len(chunks)
            stats.doc_ids.append(doc.doc_id)
            if on_doc:
                on_doc(doc, len(chunks))
        stats.seconds = time.perf_counter() - t0
        return stats

    def delete(self, doc_id: str) -> int:
        """Remove every chunk of ``doc_id`` (404 when this tenant has no such document)."""
        n = self.store.delete_document(self.tenant, self.collection, doc_id)
        if n == 0:
            raise NotFound(f"no document {doc_id!r} in collection {self.collection!r}")
        return n

    # reads -------------------------------------------------------------------------------
    def query(
        self,
        text: str,
        *,
        k: int = 5,
        mode: str = "hybrid",
        filters: Filters | None = None,
        min_score: float | None = None,
        depth: int | None = None,
        reranker: Reranker | None = None,
        fusion: Fusion = DEFAULT_FUSION,
    ) -> list[Hit]:
        """Top ``k`` hits; ``hybrid`` fuses lexical and dense candidates (``depth`` each) as
        ``fusion`` says; ``min_score`` is a floor on the final score of the chosen mode."""
        if mode not in MODES:
            raise InvalidInput(f"mode must be one of {', '.join(MODES)}", param="mode")
        if not text.strip():
            raise InvalidInput("query must not be empty", param="query")
        if not 1 <= k <= 100:
            raise InvalidInput("k must be between 1 and 100", param="k")
        info = self.info()
        if info is None:
            return []
        flt = dict(filters or {})
        n = max(depth or 4 * k, k)
        lexical: list[Hit] = []
        dense: list[Hit] = []
        if mode in ("hybrid", "lexical"):
            lexical = self.store.lexical_search(self.tenant, self.collection, text, n, flt)
        if mode in ("hybrid", "dense"):
            vec = self.embedder().query(text)[0].tolist()
            dense = self.store.dense_search(self.tenant, self.collection, vec, n, flt)
        hits = fusion.fuse(lexical, dense) if mode == "hybrid" else (lexical or dense)
        if reranker is not None:
            hits = reranker(text, hits)
        if min_score is not None:
            hits = [h for h in hits if h.score >= min_score]
        return hits[:k]


def _batches(items: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
