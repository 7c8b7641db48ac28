"""The RAG library against real engines: Qdrant edge (embedded default), qdrant-client local
mode (the Qdrant-server code path) and PostgreSQL + pgvector started by the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from paramstack.errors import Conflict, InvalidInput, NotFound
from paramstack.rag.embedders import get_embedder
from paramstack.rag.index import RagIndex
from paramstack.rag.loaders import make_document
from paramstack.rag.stores.protocol import Store, open_store
from tests.rag_support import HOSPITAL_A, HOSPITAL_B, documents, start_pgvector


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    yield from start_pgvector()


@pytest.fixture(params=["edge", "qdrant-local", "pgvector"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "edge":
        return str(tmp_path / "edge")
    if request.param == "qdrant-local":
        return f"qdrant+local://{tmp_path / 'qlocal'}"
    # one server per module; a fresh database schema per test through a unique tenant prefix
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


def _tenants(request: pytest.FixtureRequest) -> tuple[str, str]:
    # pgvector shares one server across tests: unique tenant names keep the tests independent
    tag = str(abs(hash(request.node.name)) % 10**8)
    return f"a{tag}", f"b{tag}"


def test_hybrid_search_cites_spans_and_isolates_tenants(
    store: Store, request: pytest.FixtureRequest
) -> None:
    ta, tb = _tenants(request)
    a, b = RagIndex(store, ta), RagIndex(store, tb)
    a.ingest(documents(HOSPITAL_A, dept="acil"))
    b.ingest(documents(HOSPITAL_B))
    for mode in ("lexical", "dense", "hybrid"):
        hits = a.query("kalp krizi geçiren hastaya aspirin ne zaman verilir", mode=mode, k=3)
        assert hits[0].doc_id == "kalp.md", mode
        assert all(h.doc_id in HOSPITAL_A for h in hits), mode
        top = hits[0]
        source_text = make_document("x", HOSPITAL_A["kalp.md"], "x").text
        assert source_text[top.start : top.end] == top.text
        assert top.citation()["chunk_id"] == "kalp.md#0"
    # tenant B's secret never reaches tenant A, whatever the query or filter
    assert all(h.doc_id != "gizli.txt" for h in a.query("gizli aspirin protokolü", k=10))
    assert [h.doc_id for h in b.query("aspirin", k=10)] == ["gizli.txt"]
    with pytest.raises(NotFound):
        b.delete("kalp.md")
    assert store.count(ta, "default", "kalp.md") == 1
    # a collection name of the other tenant gives an empty, not foreign, view
    assert RagIndex(store, tb, "default").query("kalp krizi", k=10)[0].doc_id == "gizli.txt"
    assert RagIndex(store, ta, "other").query("aspirin") == []


def test_turkish_case_folding_matches_dotted_and_dotless_i(
    store: Store, request: pytest.FixtureRequest
) -> None:
    ta, _ = _tenants(request)
    idx = RagIndex(store, ta)
    idx.ingest(documents(HOSPITAL_A))
    for q in ("ığdır şubesi", "IĞDIR", "igdir"):
        assert idx.query(q, mode="lexical", k=1)[0].doc_id == "ıslak.txt", q


def test_reingest_replaces_and_delete_removes_every_chunk(
    store: Store, request: pytest.FixtureRequest
) -> None:
    ta, _ = _tenants(request)
    idx = RagIndex(store, ta)
    long_text = " ".join(f"Paragraf {i}: eski protokol adım {i} uygulanır." for i in range(60))
    first = idx.ingest([make_document("p.txt", long_text, "p.txt")], chunk_size=200, overlap=20)
    assert first.chunks > 5 and store.count(ta, "default", "p.txt") == first.chunks
    again = idx.ingest([make_document("p.txt", long_text, "p.txt")], chunk_size=200, overlap=20)
    assert (again.skipped, again.documents) == (1, 0)
    new = idx.ingest([make_document("p.txt", "Yeni protokol tek adımdır.", "p.txt")])
    assert new.replaced == 1
    assert store.count(ta, "default", "p.txt") == 1
    assert all("eski" not in h.text for h in idx.query("eski protokol adım", k=10))
    assert idx.delete("p.txt") == 1
    assert store.count(ta, "default") == 0
    assert idx.query("protokol", k=5) == []


def test_collection_refuses_another_embedder(store: Store, request: pytest.FixtureRequest) -> None:
    ta, _ = _tenants(request)
    idx = RagIndex(store, ta, "notlar")
    idx.ingest(documents(HOSPITAL_A))
    assert store.get_collection(ta, "notlar").embedder == "use-m3"  # type: ignore[union-attr]
    with pytest.raises(Conflict) as err:
        idx.ingest(documents(HOSPITAL_B), get_embedder("e5-small-enpt"))
    assert err.value.code == "embedder_mismatch"
    with pytest.raises(Conflict):
        idx.embedder("e5-small-enpt")
    assert store.count(ta, "notlar", "gizli.txt") == 0  # nothing written by the refused call


def test_metadata_filter_and_score_floor(store: Store, request: pytest.FixtureRequest) -> None:
    ta, _ = _tenants(request)
    idx = RagIndex(store, ta)
    idx.ingest(documents({"k.txt": HOSPITAL_A["kalp.md"]}, dept="acil"))
    idx.ingest(documents({"i.txt": HOSPITAL_A["ilac.txt"]}, dept="eczane"))
    assert [h.doc_id for h in idx.query("ilaç", k=5, filters={"dept": "eczane"})] == ["i.txt"]
    assert idx.query("ilaç", k=5, filters={"dept": "yok"}) == []
    assert idx.query("ilaç saklama", mode="dense", min_score=1.01) == []
    with pytest.raises(InvalidInput):
        idx.query("x", mode="fuzzy")


def test_edge_store_persists_across_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "edge")
    s = open_store(path)
    RagIndex(s, "t1").ingest(documents(HOSPITAL_A))
    s.close()
    s = open_store(path)
    assert RagIndex(s, "t1").query("ilaç saklama", k=1)[0].doc_id == "ilac.txt"
    assert s.documents("t1", "default").keys() == HOSPITAL_A.keys()
    s.close()


def test_bad_names_are_refused() -> None:
    s = open_store(":memory:")
    with pytest.raises(InvalidInput):
        RagIndex(s, "../etc")
    with pytest.raises(InvalidInput):
        RagIndex(s, "t", "a b")


def test_pii_scrubbing_and_reranker_hook(tmp_path: Path) -> None:
    s = open_store(str(tmp_path / "edge"))
    idx = RagIndex(s, "t1")
    text = "Hasta iletişim: ayse.yilmaz@example.com adresine yazın. Kan tahlili sonuçları hazır."
    idx.ingest([make_document("p.txt", text, "p.txt")], scrub_pii=True)
    hit = idx.query("kan tahlili iletişim", k=1)[0]
    assert "ayse.yilmaz@example.com" not in hit.text and "[EMAIL" in hit.text
    idx.ingest(documents(HOSPITAL_A))
    plain = idx.query("ilaç", k=3)
    flipped = idx.query("ilaç", k=3, reranker=lambda q, hits: list(reversed(hits)))
    assert [h.chunk_id for h in flipped] == [h.chunk_id for h in reversed(idx.query("ilaç", k=12))][
        :3
    ]
    assert flipped[0].chunk_id != plain[0].chunk_id
    s.close()
