"""Weighted fusion, the embedding cache, the USE embedder, dev-set tuning and the set builder."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from paramstack.cli.app import app
from paramstack.errors import InvalidInput
from paramstack.rag.embed_cache import CachedEmbedder
from paramstack.rag.embedders import Embedder, Matrix, get_embedder
from paramstack.rag.evalset import build
from paramstack.rag.fusion import Fusion, rrf, score_fusion
from paramstack.rag.types import Hit
from tests.rag_support import write_tiny_evalset


def hit(cid: str, score: float) -> Hit:
    return Hit(cid, cid.split("#")[0], "v1", 0, cid, 0, 1, "s", score)


LEX = [hit("a#0", 9.0), hit("b#0", 5.0), hit("c#0", 1.0)]
DENSE = [hit("c#0", 0.9), hit("d#0", 0.8), hit("a#0", 0.2)]


def test_weighted_rrf_and_score_fusion() -> None:
    equal = rrf([LEX, DENSE], k=60)  # a and c: ranks 1 and 3 in both lists (a tie)
    assert [h.chunk_id for h in equal] == ["a#0", "c#0", "b#0", "d#0"]
    assert equal[0].score == pytest.approx(1 / 61 + 1 / 63) == equal[1].score
    assert [h.chunk_id for h in rrf([LEX, DENSE], 60, [1.0, 0.0])] == ["a#0", "b#0", "c#0", "d#0"]
    fused = score_fusion([LEX, DENSE], [1.0, 0.5])
    by_id = {h.chunk_id: h.score for h in fused}
    # a: lexical 1.0 + dense 0; c: lexical 0 + 0.5 * 1.0; b: 0.5; d: 0.5 * 6/7
    assert by_id["a#0"] == pytest.approx(1.0)
    assert by_id["c#0"] == pytest.approx(0.5)
    assert by_id["b#0"] == pytest.approx(0.5)
    assert by_id["d#0"] == pytest.approx(0.5 * 0.6 / 0.7)
    assert fused[0].chunk_id == "a#0" and fused[-1].chunk_id == "d#0"
    assert Fusion("score", 3.0).fuse(LEX, DENSE)[0].chunk_id == "c#0"  # dense dominates
    assert Fusion("score").fuse(LEX, [])[0].chunk_id == "a#0"
    with pytest.raises(InvalidInput):
        Fusion("max")
    with pytest.raises(InvalidInput):
        Fusion("rrf", -1.0)


class Counting:
    """The real USE embedder, counting the texts it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.spec, self.dim, self.seen = inner, inner.spec, inner.dim, 0

    def passages(self, texts: list[str]) -> Matrix:
        self.seen += len(texts)
        return self.inner.passages(texts)

    def query(self, text: str) -> Matrix:
        self.seen += 1
        return self.inner.query(text)


def test_use_embedder_and_cache_embed_each_text_once(tmp_path: Path) -> None:
    use = get_embedder("use-m3")
    assert (use.spec, use.dim) == ("use-m3", 512)
    texts = ["Kalp krizinde aspirin çiğnetilir.", "Ziyaret saatleri öğleden sonradır."]
    inner = Counting(use)
    cached = CachedEmbedder(inner, tmp_path / "cache")
    first = cached.passages(texts)
    assert first.shape == (2, 512)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    q = cached.query("kalp krizi ilk yardım aspirin")
    assert float(first[0] @ q[0]) > float(first[1] @ q[0]) + 0.3  # Turkish meaning, not noise
    again = CachedEmbedder(inner, tmp_path / "cache")  # a new process would reopen the file
    assert np.array_equal(again.passages([texts[1], texts[0]]), first[::-1])
    assert np.array_equal(again.query("kalp krizi ilk yardım aspirin"), q)
    assert inner.seen == 3  # two passages and one query, each embedded once
    assert again.spec == "use-m3" and cached.passages([]).shape == (0, 512)


def _speech_db(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE speeches (id TEXT, title_tr TEXT)")
    con.execute("CREATE TABLE speech_texts (speech_id TEXT, lang TEXT, body TEXT)")
    topics = ["Meclis", "Ordu", "Okul", "Köy"]
    for n, topic in enumerate(topics):
        body = " ".join(
            f"{topic} konusunda {i}. cümle uzunca yazılmış ve anlamlı bir örnek metindir."
            for i in range(8)
        )
        con.execute("INSERT INTO speeches VALUES (?, ?)", (f"s{n}", topic))
        con.execute("INSERT INTO speech_texts VALUES (?, 'tr', ?)", (f"s{n}", body))
    con.commit()
    con.close()
    return path


def test_shard_builds_a_disjoint_development_set(tmp_path: Path) -> None:
    db = _speech_db(tmp_path / "speeches.db")
    full = build(tmp_path / "full", size=300, db=db)
    dev = build(tmp_path / "dev", size=300, db=db, shard=(1, 2), seed=7)
    speeches = {json.loads(line)["speech"] for line in dev.corpus.read_text().splitlines()}
    assert speeches == {"s1", "s3"}
    assert len(full.corpus.read_text().splitlines()) > len(dev.corpus.read_text().splitlines())


def test_tune_cli_grid_searches_on_a_dev_set(tmp_path: Path) -> None:
    corpus, queries = write_tiny_evalset(tmp_path)
    held = tmp_path / "test.jsonl"
    held.write_text(json.dumps({"query": "harf okuma", "relevant": ["d3"]}))
    out = tmp_path / "tune.json"
    result = CliRunner().invoke(
        app,
        ["rag", "tune", "--corpus", str(corpus), "--queries", str(queries),
         "--exclude", str(held), "--store", str(tmp_path / "store"), "--embedder", "use-m3",
         "--embed-cache", str(tmp_path / "cache"), "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["queries"] == 2  # the held-out test query was dropped
    assert report["best"]["recall@5"] == 1.0 and len(report["grid"]) > 20
    assert {"method", "dense_weight", "k"} <= report["best"].keys()


def test_build_evalset_refuses_a_bad_shard(tmp_path: Path) -> None:
    for shard in ("2/2", "x", "1/0"):
        res = CliRunner().invoke(
            app, ["rag", "build-evalset", "--dest", str(tmp_path), "--shard", shard]
        )
        assert isinstance(res.exception, InvalidInput), shard
