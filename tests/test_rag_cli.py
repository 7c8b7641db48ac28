"""``paramstack rag`` end to end through Typer: every file type, re-ingest, delete, eval report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paramstack.cli.app import app
from paramstack.errors import InvalidInput, NotFound
from paramstack.rag.evalset import passages, sentences
from paramstack.rag.evaluate import ranked_docs, score
from tests.rag_support import write_tiny_evalset

runner = CliRunner()


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with ``text`` in Helvetica (enough for pypdf's text extraction)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def docs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PARAMSTACK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PARAMSTACK_RAG_STORE", str(tmp_path / "store"))
    d = tmp_path / "docs"
    (d / "alt").mkdir(parents=True)
    (d / "kalp.md").write_text("# Kalp\n\nKalp krizinde aspirin çiğnetilir.", encoding="utf-8")
    (d / "alt" / "sayfa.html").write_text(
        "<html><script>gizli()</script><p>Randevu için hasta kabul bankosuna başvurun.</p></html>"
    )
    (d / "rapor.pdf").write_bytes(minimal_pdf("Radyoloji raporu tomografi sonucu normal"))
    rows = [{"id": "sss-1", "text": "Ziyaret saatleri 14:00 ile 16:00 arasıdır.", "bolum": "x"}]
    (d / "sss.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    return d


def _query(text: str, *extra: str) -> list[dict[str, object]]:
    out = run("rag", "query", text, "-t", "hospA", "--k", "3", *extra)
    return json.loads(out[out.index("[") :])


def test_ingest_every_type_query_reingest_delete(docs: Path) -> None:
    out = run("rag", "ingest", str(docs), "-t", "hospA")
    assert "4 documents" in out and "chunks/s" in out
    assert _query("tomografi raporu")[0]["doc_id"] == "rapor.pdf"
    assert _query("hasta kabul randevu")[0]["doc_id"] == "alt/sayfa.html"
    assert all("gizli" not in str(h["text"]) for h in _query("gizli"))
    assert _query("ziyaret saatleri", "--where", "bolum=x")[0]["doc_id"] == "sss-1"
    # unchanged files are skipped; an edited file replaces its chunks
    assert "0 documents (0 replaced, 4 unchanged)" in run("rag", "ingest", str(docs), "-t", "hospA")
    (docs / "kalp.md").write_text("Kalp krizinde yeni protokol uygulanır.", encoding="utf-8")
    assert "1 documents (1 replaced, 0 unchanged)" in run(
        "rag", "ingest", str(docs / "*.md"), "-t", "hospA"
    )
    hits = _query("kalp krizi", "--mode", "lexical")
    assert hits[0]["doc_id"] == "kalp.md" and "yeni protokol" in str(hits[0]["text"])
    # another tenant sees nothing, and cannot delete hospA's document
    other = runner.invoke(app, ["rag", "delete", "kalp.md", "-t", "hospB"])
    assert isinstance(other.exception, NotFound)
    run("rag", "delete", "kalp.md", "-t", "hospA")
    assert all(h["doc_id"] != "kalp.md" for h in _query("kalp krizi"))
    again = runner.invoke(app, ["rag", "delete", "kalp.md", "-t", "hospA"])
    assert isinstance(again.exception, NotFound)


def test_bad_input_exits_nonzero(docs: Path) -> None:
    (docs / "x.docx").write_text("nope")
    cmd = [sys.executable, "-m", "paramstack", "rag", "ingest", str(docs / "x.docx"), "-t", "a"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | {"COLUMNS": "200"})
    assert proc.returncode == 2 and "unsupported file type" in proc.stderr
    assert not (docs.parent / "store").exists()  # nothing written
    res = runner.invoke(app, ["rag", "query", "x", "-t", "hospA", "--mode", "fuzzy"])
    assert isinstance(res.exception, InvalidInput)
    res = runner.invoke(app, ["rag", "ingest", str(docs), "-t", "../x"])
    assert isinstance(res.exception, InvalidInput)


def test_eval_reports_each_retriever(docs: Path, tmp_path: Path) -> None:
    corpus, queries = write_tiny_evalset(tmp_path)
    out_dir = tmp_path / "report"
    run("rag", "eval", "--corpus", str(corpus), "--queries", str(queries), "--out", str(out_dir),
        "--store", str(tmp_path / "evalstore"))  # fmt: skip
    report = json.loads((out_dir / "report.json").read_text())
    assert set(report["results"]) == {"lexical", "dense", "hybrid"}
    assert report["results"]["hybrid"]["recall@5"] == 1.0
    assert report["ingest"]["chunks"] == 3 and report["documents"] == 3
    assert "| hybrid |" in (out_dir / "report.md").read_text()


def test_metrics_and_evalset_helpers() -> None:
    assert ranked_docs(["a", "b", "a", "c"]) == ["a", "b", "c"]
    m = score(["x", "a", "y"], frozenset({"a"}))
    assert m["recall@1"] == 0.0 and m["recall@5"] == 1.0 and m["mrr@10"] == 0.5
    assert round(m["ndcg@10"], 4) == round(1 / 1.5849625, 4)
    s = sentences("Birinci cümle. İkinci cümle! Üçüncü? 4. madde bitti.")
    assert s == ["Birinci cümle.", "İkinci cümle!", "Üçüncü?", "4. madde bitti."]
    assert [len(p) for p in passages(" ".join(["Bir cümle burada."] * 10), 40)] == [2] * 5
