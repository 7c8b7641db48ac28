"""Sentence-aware chunking with character offsets.

``semantic-text-splitter`` (Rust, well kept) splits at the largest semantic boundary that fits
(paragraph, sentence, word) and returns character offsets, which the citations need; writing
our own splitter would re-solve the same problem less well.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from semantic_text_splitter import TextSplitter

from paramstack.errors import InvalidInput
from paramstack.rag.types import Chunk, Document


@lru_cache(maxsize=16)
def _splitter(size: int, overlap: int) -> TextSplitter:
    return TextSplitter((max(1, size // 2), size), overlap=overlap, trim=True)


def chunk_document(doc: Document, size: int = 800, overlap: int = 100) -> list[Chunk]:
    """Chunks of at most ``size`` characters, ``overlap`` shared with the previous one; chunks
    with the same text inside one document are kept once (content-hash dedup)."""
    if size < 50 or not 0 <= overlap < size:
        raise InvalidInput("chunk size must be ≥ 50 and 0 ≤ overlap < size", param="chunk_size")
    seen: set[str] = set()
    chunks: list[Chunk] = []
    for start, text in _splitter(size, overlap).chunk_indices(doc.text):
        digest = hashlib.sha256(text.encode()).hexdigest()
        if not text.strip() or digest in seen:
            continue
        seen.add(digest)
        chunks.append(
            Chunk(
                doc_id=doc.doc_id,
                version=doc.version,
                index=len(chunks),
                text=text,
                start=start,
                end=start + len(text),
                source=doc.source,
                metadata=doc.metadata,
            )
        )
    return chunks
