"""``data clean``: normalisation, filters, dedup and the whole pipeline on real Turkish text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from faker import Faker

from paramstack.data.dedup import Deduplicator, exact_hash, signature
from paramstack.data.filters import CleanConfig, clean_one
from paramstack.data.ingest import Doc, expand, html_text
from paramstack.data.langid import identify
from paramstack.data.normalise import dedup_key, normalise
from paramstack.data.pipeline import clean
from paramstack.data.quality import (
    c4_filter,
    fineweb_quality,
    gopher_quality,
    gopher_repetition,
)
from paramstack.errors import InvalidInput


def speeches(sample: Path, n: int) -> list[dict[str, str]]:
    rows = [json.loads(x) for x in (sample / "train/speeches.jsonl").read_text().splitlines()]
    good = [
        r
        for r in rows
        if 2000 < len(r["text"]) < 6000 and r["text"].rstrip().endswith((".", "!", "?"))
    ]
    return good[:n]


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PARAMSTACK_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "paramstack", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


def test_normalise_repairs_turkish_without_folding_it() -> None:
    decomposed = "Bas\u0327ar\u0131l\u0131 i\u0307s\u0327\u200b  \t  İstanbul\r\n\n\n\nIşık"
    assert normalise(decomposed) == "Başarılı iş İstanbul\n\nIşık"
    # Turkish case folding for the dedup key: I -> ı and İ -> i, punctuation ignored.
    assert dedup_key("IŞIK, İstanbul!") == dedup_key("ışık istanbul")
    assert dedup_key("IŞIK") != dedup_key("işik")


def test_language_identification_offline() -> None:
    assert identify("Bugün hava çok güzel, parka gidip biraz yürüyüş yapacağız.")[0] == "tr"
    assert identify("The weather is lovely today, we are going for a walk.")[0] == "en"


def test_quality_rules_keep_real_speeches_and_drop_junk(turkish_sample: Path) -> None:
    text = normalise(speeches(turkish_sample, 1)[0]["text"])
    assert gopher_quality(text) is None
    assert gopher_repetition(text) is None
    assert c4_filter(text)[1] is None
    assert fineweb_quality(text) is None
    assert gopher_quality("Kısa bir metin.") == "gopher_short_doc"
    spam = "\n".join(["Hemen tıklayın ve kazanın bu fırsatı kaçırmayın."] * 40)
    assert gopher_repetition(spam) == "gopher_dup_lines"
    words_only = " ".join(f"kelime{i}" for i in range(80))
    assert gopher_quality(words_only) == "gopher_stop_words"
    menu = "\n".join(f"Menü {i}" for i in range(30))
    assert fineweb_quality(menu) == "fineweb_line_punct"


def test_c4_drops_boilerplate_lines() -> None:
    body = " ".join(f"Bu cümle numara {i} ve anlamlı bir cümledir." for i in range(6))
    page = f"{body}\nJavascript etkinleştirin lütfen.\nSitemiz çerezleri kullanır.\nMenü"
    cleaned, reason = c4_filter(page)
    assert reason is None
    assert cleaned == body
    assert c4_filter(body + " {json: 1}")[1] == "c4_curly_bracket"
    signed = f"{body} Mustafa Kemal"  # one paragraph ending in a signature
    assert c4_filter(signed) == ("", "c4_too_few_sentences")
    assert c4_filter(signed, terminal_punct=False) == (signed, None)


def test_minhash_catches_near_duplicates_and_keeps_distinct(turkish_sample: Path) -> None:
    a, b = (normalise(r["text"]) for r in speeches(turkish_sample, 2))
    near = a.replace(" ve ", " ile ", 2) + " Teşekkür ederim."
    dedup = Deduplicator(threshold=0.8)
    assert dedup.check(exact_hash(a), signature(a)) is None
    shouted = a.replace("i", "İ").upper()  # Turkish upper case: i -> İ, ı -> I
    assert dedup.check(exact_hash(shouted), signature(shouted)) == "exact_duplicate"
    assert dedup.check(exact_hash(near), signature(near)) == "near_duplicate"
    assert dedup.check(exact_hash(b), signature(b)) is None


def test_pii_is_masked_with_the_guard(turkish_sample: Path) -> None:
    fake = Faker("tr_TR")
    fake.seed_instance(7)
    tckn = fake.ssn()
    text = speeches(turkish_sample, 1)[0]["text"] + f" Kimlik numaram {tckn} idi."
    outcome = clean_one(Doc("x", text, "t"), CleanConfig())
    assert outcome.stage is None
    assert tckn not in outcome.doc.text
    assert "[TCKN]" in outcome.doc.text
    assert outcome.pii_spans == 1


def test_html_keeps_visible_text_only() -> None:
    html = (
        "<html><head><style>p{}</style><script>var x=1;</script></head><body><nav>Ana sayfa"
        "</nav><p>Birinci paragraf.</p><p>İkinci paragraf.</p><footer>© 2024</footer></body>"
        "</html>"
    )
    text = normalise(html_text(html))
    assert text == "Birinci paragraf.\nİkinci paragraf."


def write_corpus(folder: Path, sample: Path) -> dict[str, int]:
    """Every input type, with known duplicates, a foreign-language document and junk."""
    docs = speeches(sample, 24)
    folder.mkdir()
    rows = [*docs[:16], docs[0], {**docs[1], "id": "dup-1"}]
    near = dict(docs[2], id="near-2", text=docs[2]["text"].replace(" ve ", " ile ", 2))
    english = {"id": "en", "text": "This is an English page. " * 40}
    with (folder / "part.jsonl").open("w") as f:
        for row in [*rows, near, english]:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    (folder / "notes").mkdir()
    (folder / "notes/a.md").write_text(docs[16]["text"])
    (folder / "notes/b.txt").write_text(docs[17]["text"])
    (folder / "notes/empty.txt").write_text("   \n")
    # The HTML page carries a speech that passes every filter as plain text.
    page = next(
        d for d in docs[18:] if clean_one(Doc("p", d["text"], "t"), CleanConfig()).stage is None
    )
    paragraphs = "".join(f"<p>{p}</p>" for p in page["text"].split("\n") if p)
    (folder / "page.html").write_text(f"<html><body><nav>Menü</nav>{paragraphs}</body></html>")
    return {"in": 24, "unique_turkish": 19}


def test_clean_pipeline_end_to_end(turkish_sample: Path, tmp_path: Path) -> None:
    expected = write_corpus(tmp_path / "raw", turkish_sample)
    out = tmp_path / "clean"
    result = cli(tmp_path / "home", "data", "clean", str(tmp_path / "raw"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "documents/s" in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["documents_in"] == expected["in"]
    stages = {s["stage"]: s for s in report["stages"]}
    assert stages["empty"]["in"] - stages["empty"]["out"] == 1
    assert stages["language"]["in"] - stages["language"]["out"] == 1
    assert stages["exact_dedup"]["in"] - stages["exact_dedup"]["out"] == 2
    assert stages["near_dedup"]["in"] - stages["near_dedup"]["out"] == 1
    rows = [json.loads(x) for s in sorted(out.glob("shard-*.jsonl")) for x in s.open()]
    assert len(rows) == report["documents_out"]
    assert report["documents_out"] <= expected["unique_turkish"]
    # Single-paragraph letters ending in a signature or a footnote number fail C4's line rule
    # and interviews ("- Soru? - Cevap.") Gopher's bullet rule: real drops, counted per reason.
    assert report["documents_out"] >= expected["unique_turkish"] // 2
    assert sum(report["reasons"].values()) == report["documents_in"] - report["documents_out"]
    assert {"id", "text", "source"} == set(rows[0])
    assert not any(r["id"] in ("dup-1", "near-2", "en") for r in rows)
    assert any(r["source"].endswith("page.html") for r in rows)


def test_parallel_run_matches_single_process(turkish_sample: Path, tmp_path: Path) -> None:
    docs = [Doc(r["id"], r["text"], "s") for r in speeches(turkish_sample, 20)]
    docs += docs[:3]
    one = clean(docs, tmp_path / "one", CleanConfig(workers=1, shard_docs=7))
    two = clean(docs, tmp_path / "two", CleanConfig(workers=2, shard_docs=7))
    assert one["stages"] == two["stages"]
    assert one["shards"] == len(list((tmp_path / "one").glob("shard-*.jsonl"))) >= 2
    for shard in (tmp_path / "one").glob("shard-*.jsonl"):
        assert shard.read_text() == (tmp_path / "two" / shard.name).read_text()


def test_bad_input_is_refused_without_partial_output(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"no \.txt"):
        expand([str(tmp_path / "missing")])
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.jsonl").write_text('{"text": "Merhaba dünya."}\n')
    (raw / "b.jsonl").write_text('{"text": "ok"}\nnot json\n')
    out = tmp_path / "out"
    result = cli(tmp_path / "home", "data", "clean", str(raw), "--out", str(out))
    assert result.returncode == 2
    assert "b.jsonl:2: not JSON" in result.stderr
    assert list(out.iterdir()) == []


def test_config_file_and_overrides(tmp_path: Path) -> None:
    from paramstack.cli.data import _load_config

    shipped = Path(__file__).parents[1] / "configs/data/clean.yaml"
    assert _load_config(shipped, {}) == CleanConfig()  # the YAML documents the defaults
    cfg = _load_config(shipped, {"languages": ["tr", "en"], "workers": 1, "pii": None})
    assert cfg.languages == ("tr", "en") and cfg.workers == 1 and cfg.pii is True
    bad = tmp_path / "bad.yaml"
    bad.write_text("minhash_treshold: 0.7\n")
    with pytest.raises(InvalidInput, match="unknown clean settings"):
        _load_config(bad, {})
