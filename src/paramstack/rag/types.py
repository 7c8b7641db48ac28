"""The records that move between ingestion, stores and retrieval."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """One source document: ``doc_id`` is stable across edits, ``version`` is its content hash."""

    doc_id: str
    text: str
    source: str
    version: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """A piece of a document with the character span it came from (for citations)."""

    doc_id: str
    version: str
    index: int
    text: str
    start: int
    end: int
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def chunk_id(self) -> str:
        return f"{self.doc_id}#{self.index}"


@dataclass(frozen=True)
class SparseVec:
    """Hashed term ids and weights: the lexical (BM25) side of a chunk or a query."""

    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class StoredChunk:
    """A chunk ready for a store: its dense and lexical vectors beside it."""

    chunk: Chunk
    dense: list[float]
    sparse: SparseVec


@dataclass
class Hit:
    """One retrieved chunk with its citation and score."""

    chunk_id: str
    doc_id: str
    version: str
    index: int
    text: str
    start: int
    end: int
    source: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def citation(self) -> dict[str, Any]:
        """What a client needs to point at the source: document, chunk and character span."""
        return {
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "version": self.version,
            "chunk": self.index,
            "start": self.start,
            "end": self.end,
            "source": self.source,
            "score": round(self.score, 6),
        }
