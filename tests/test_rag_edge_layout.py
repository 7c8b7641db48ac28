"""The edge store's layout: one Qdrant edge shard per (tenant, collection), opened lazily and
LRU-closed, tenant-local BM25 statistics, and the one-shot migration from the old single shard."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import qdrant_edge as qe
from typer.testing import CliRunner

from paramstack.cli.app import app
from paramstack.errors import InvalidInput
from paramstack.rag.index import RagIndex
from paramstack.rag.stores.edge import LEX, EdgeStore, StoreLayoutError
from paramstack.rag.stores.edge_migrate import migrate_store
from paramstack.rag.stores.protocol import dense_name
from tests.rag_support import HOSPITAL_A, HOSPITAL_B, documents


def test_each_tenant_is_its_own_directory(tmp_path: Path) -> None:
    s = EdgeStore(tmp_path / "edge")
    RagIndex(s, "hosp-a").ingest(documents(HOSPITAL_A))
    RagIndex(s, "hosp-b", "notes").ingest(documents(HOSPITAL_B))
    assert s.collections() == [("hosp-a", "default"), ("hosp-b", "notes")]
    s.close()
    root = tmp_path / "edge" / "tenants"
    assert (root / "hosp-a" / "default" / "shard" / "edge_config.json").exists()
    assert json.loads((root / "hosp-b" / "notes" / "meta.json").read_text())["embedder"] == "use-m3"
    # removing one tenant's folder removes exactly that tenant
    import shutil

    shutil.rmtree(root / "hosp-b")
    s = EdgeStore(tmp_path / "edge")
    assert RagIndex(s, "hosp-b", "notes").query("aspirin") == []
    assert RagIndex(s, "hosp-a").query("aspirin", k=1)[0].doc_id == "kalp.md"
    s.close()


def test_lru_closes_idle_shards_and_reopens_them(tmp_path: Path) -> None:
    s = EdgeStore(tmp_path / "edge", max_open=2)
    for t in range(5):
        RagIndex(s, f"t{t}").ingest(documents({f"doc{t}.txt": HOSPITAL_A["kalp.md"]}))
        assert s.open_shards() <= 2
    for t in range(5):  # every tenant answers from its own (re-opened) shard
        assert [h.doc_id for h in RagIndex(s, f"t{t}").query("aspirin", k=5)] == [f"doc{t}.txt"]
        assert s.open_shards() <= 2
    s.close()
    assert s.open_shards() == 0


def test_a_shard_in_use_is_never_closed_under_its_caller(tmp_path: Path) -> None:
    s = EdgeStore(tmp_path / "edge", max_open=1)
    for t in ("t0", "t1", "t2"):
        RagIndex(s, t).ingest(documents({"kalp.md": HOSPITAL_A["kalp.md"]}))
    with s._shard("t0", "default") as pinned:  # a running call holds t0's shard
        assert pinned is not None
        assert RagIndex(s, "t1").query("aspirin", k=1)[0].doc_id == "kalp.md"
        assert RagIndex(s, "t2").query("aspirin", k=1)[0].doc_id == "kalp.md"
        # the idle shards made way; the pinned one stayed open and usable
        assert list(s._open) == [("t0", "default")]
        assert pinned.shard.count(qe.CountRequest(exact=True)) == 1
    assert RagIndex(s, "t1").query("aspirin", k=1)[0].doc_id == "kalp.md"
    assert list(s._open) == [("t1", "default")]  # t0 released, so it could be closed
    s.close()


def test_another_tenants_documents_do_not_move_bm25_scores(tmp_path: Path) -> None:
    s = EdgeStore(tmp_path / "edge")
    a = RagIndex(s, "a")
    a.ingest(documents(HOSPITAL_A))
    before = a.query("aspirin hasta", mode="lexical", k=3)
    flood = {f"b{i}.txt": f"Aspirin hasta notu {i}." for i in range(40)}
    RagIndex(s, "b").ingest(documents(flood))
    after = a.query("aspirin hasta", mode="lexical", k=3)
    assert [(h.chunk_id, h.score) for h in after] == [(h.chunk_id, h.score) for h in before]
    s.close()


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b"])
def test_names_that_are_not_plain_directories_are_refused(tmp_path: Path, name: str) -> None:
    s = EdgeStore(tmp_path / "edge")
    with pytest.raises(InvalidInput):
        s.count(name, "default")
    with pytest.raises(InvalidInput):
        s.count("t", name)
    with pytest.raises(InvalidInput):
        RagIndex(s, name)
    s.close()


def _old_layout_from(new: EdgeStore, dest: Path) -> None:
    """Write the pre-migration layout (one shard, tenant-filtered, collections.json) holding the
    same points as ``new``: what a store written by the previous release looks like."""
    config = qe.EdgeConfig(
        vectors={},
        sparse_vectors={LEX: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        hnsw_config=qe.HnswIndexConfig(
            m=0, ef_construct=100, full_scan_threshold=10_000, payload_m=16
        ),
    )
    shard = qe.EdgeShard.create(str(dest / "shard"), config)
    for f in ("tenant", "collection"):
        params = qe.KeywordIndexParams(is_tenant=f == "tenant")
        shard.update(qe.UpdateOperation.create_field_index(f, params))
    meta = {}
    for tenant, collection in new.collections():
        info = new.get_collection(tenant, collection)
        assert info is not None
        if not meta or info.dim not in {m["dim"] for m in meta.values()}:
            op = qe.UpdateOperation.create_dense_vector(
                dense_name(info.dim), info.dim, qe.Distance.Cosine
            )
            shard.update(op)
        meta[f"{tenant}/{collection}"] = {"embedder": info.embedder, "dim": info.dim}
        points = [qe.Point(r.id, r.vector, r.payload) for r in new.scroll(tenant, collection)]
        shard.update(qe.UpdateOperation.upsert_points(points))
    shard.flush()
    shard.close()
    (dest / "collections.json").write_text(json.dumps(meta))


def test_old_layout_is_refused_then_migrated_without_reembedding(tmp_path: Path) -> None:
    new = EdgeStore(tmp_path / "fresh")
    RagIndex(new, "hosp-a").ingest(documents(HOSPITAL_A, dept="acil"))
    RagIndex(new, "hosp-b").ingest(documents(HOSPITAL_B))
    want = {
        t: [(h.chunk_id, h.text) for h in RagIndex(new, t).query("aspirin kalp", k=5)]
        for t in ("hosp-a", "hosp-b")
    }
    old = tmp_path / "old"
    _old_layout_from(new, old)
    new.close()

    with pytest.raises(StoreLayoutError, match="migrate-store"):
        EdgeStore(old)
    report = migrate_store(old)
    assert report.collections == {"hosp-a/default": 3, "hosp-b/default": 1}
    assert report.orphans == 0
    assert (old / "legacy-shard").exists() and not (old / "shard").exists()
    migrated = EdgeStore(old)
    for t, hits in want.items():
        got = RagIndex(migrated, t).query("aspirin kalp", k=5)
        assert [(h.chunk_id, h.text) for h in got] == hits
    filtered = RagIndex(migrated, "hosp-a").query("ilaç", filters={"dept": "acil"}, k=1)
    assert filtered[0].metadata == {"dept": "acil"}
    migrated.close()
    with pytest.raises(InvalidInput):  # nothing left to migrate
        migrate_store(old)


def test_cli_names_the_migration_and_runs_it(tmp_path: Path) -> None:
    new = EdgeStore(tmp_path / "fresh")
    RagIndex(new, "hosp-a").ingest(documents(HOSPITAL_A))
    old = tmp_path / "old"
    _old_layout_from(new, old)
    new.close()
    cmd = [sys.executable, "-m", "paramstack", "rag", "documents", "-t", "hosp-a"]
    refused = subprocess.run([*cmd, "--store", str(old)], capture_output=True, text=True)
    assert refused.returncode != 0
    message = " ".join(refused.stderr.split())  # the console wraps long lines
    assert "paramstack rag migrate-store" in message and "Traceback" not in message
    runner = CliRunner()
    done = runner.invoke(app, ["rag", "migrate-store", "--store", str(old)])
    assert done.exit_code == 0, done.output
    assert "migrated 3 points in 1 collections" in done.output
    listed = runner.invoke(app, ["rag", "documents", "-t", "hosp-a", "--store", str(old)])
    assert listed.exit_code == 0 and "kalp.md" in listed.output
