"""EC57 bxb scoring of the served path: the matching rules on hand-made beat lists, and
``ecg evaluate --inputs served|served:N`` end to end on a real MIT-BIH record cut to a minute."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from paramstack.cli.ecg import app
from paramstack.config import Settings
from paramstack.ecg.bxb import bxb_confusion, bxb_metrics, match_beats
from paramstack.ecg.config import load_config
from paramstack.ecg.records import AAMI_CLASSES, AAMI_MAP, BEAT_SYMBOLS, read_record
from paramstack.ecg.served_eval import served_beats, torch_runner
from paramstack.ecg.strip import strip_options
from paramstack.ecg.train import load_trained, train_ecg
from paramstack.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[1]
MITDB = ROOT.parent / "shared" / "data" / "mitdb"
TINY = ROOT / "configs" / "ecg" / "tiny.yaml"
SECONDS = 60


def test_a_miss_an_extra_and_two_detections_near_one_beat() -> None:
    reference = [1.0, 2.0, 3.0, 4.0]
    detected = [1.02, 1.10, 3.0, 5.0, 3.9]  # two near 1.0, none near 2.0, 5.0 is alone
    matched = match_beats(reference, detected)
    assert matched.tolist() == [0, -1, 2, 4]  # the nearest of the two takes beat 1.0
    cm = bxb_confusion(np.array([0, 1, 2, 0]), np.array([0, 0, 2, 1, 2]), matched, 3)
    # rows N S V + extra; columns N S V + not detected
    assert cm.tolist() == [[1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 1, 0], [1, 1, 0, 0]]
    m = bxb_metrics(cm, ("N", "S", "V"))
    assert m["detector"] == {"reference_beats": 4, "detections": 5, "matched": 3, "missed": 1,
                             "extra": 2, "se": 0.75, "ppv": 0.6}  # fmt: skip
    assert m["classes"]["N"]["se"] == 0.5 and m["classes"]["N"]["ppv"] == 0.5  # extra N
    assert m["classes"]["S"]["se"] == 0.0 and m["classes"]["S"]["missed"] == 1
    assert m["classes"]["S"]["ppv"] == 0.0 and m["classes"]["S"]["extra"] == 1
    assert m["classes"]["V"]["ppv"] == 0.5 and m["accuracy"] == 0.5


def test_the_150_ms_edge_is_inclusive_and_one_detection_serves_one_beat() -> None:
    assert match_beats([1.0], [1.15]).tolist() == [0]
    assert match_beats([1.0], [0.85]).tolist() == [0]
    assert match_beats([1.0], [1.151, 0.849]).tolist() == [-1]
    assert match_beats([1.0, 1.2], [1.1]).tolist() == [0, -1]  # tie: the earlier beat
    # nearest pair first: 1.27 goes to 1.3 (30 ms), so 1.2 takes 1.1 (not its nearest 1.27)
    assert match_beats([1.2, 1.3], [1.1, 1.27]).tolist() == [0, 1]
    assert match_beats([], [1.0]).tolist() == [] and match_beats([1.0], []).tolist() == [-1]


@pytest.fixture(scope="module")
def short_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first minute of MIT-BIH 119 (ventricular bigeminy) and 100, as WFDB records."""
    import wfdb

    folder = tmp_path_factory.mktemp("mitdb-1min")
    for name in ("119", "100"):
        rec = wfdb.rdrecord(str(MITDB / name), sampto=SECONDS * 360, channels=[0])
        ann = wfdb.rdann(str(MITDB / name), "atr", sampto=SECONDS * 360 - 1)
        wfdb.wrsamp(name, fs=rec.fs, units=["mV"], sig_name=rec.sig_name,
                    p_signal=rec.p_signal, fmt=["16"], write_dir=str(folder))  # fmt: skip
        wfdb.wrann(name, "atr", ann.sample, ann.symbol, write_dir=str(folder))
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model, one short epoch: the bxb bookkeeping does not need a good one."""
    home = tmp_path_factory.mktemp("ecg-bxb-home")
    config = load_config(TINY, [f"db={MITDB}", f"out_dir={home / 'model'}", "epochs=1",
                                "max_beats_per_record=200", "mlflow=false"])  # fmt: skip
    torch.manual_seed(config.seed)
    return train_ecg(config, settings=Settings(home=home)).out_dir


def _evaluate(
    model_dir: Path, db: Path, inputs: str, folder: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    args = ["evaluate", "--model-dir", str(model_dir), "--db", str(db), "--records", "119,100",
            "--inputs", inputs, "--report-dir", str(folder), "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads((folder / "report.json").read_text()), json.loads(result.output)


def test_served_mode_counts_every_beat_once(
    model_dir: Path, short_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARAMSTACK_HOME", str(tmp_path))
    report, printed = _evaluate(model_dir, short_db, "record,served:20", tmp_path / "both")
    served = report["served_bxb"]
    model, _, meta = load_trained(model_dir)
    run, options = torch_runner(model), strip_options(meta)
    n_ref, given = 0, np.zeros(len(AAMI_CLASSES), dtype=np.int64)
    for name in ("119", "100"):
        record = read_record(short_db, name)
        symbols = [s for s in record.beat_symbols if s in BEAT_SYMBOLS]
        times, labels, stats = served_beats(record, run, options, 20.0)
        assert stats["strips"] == SECONDS // 10 and not stats["failed"]
        det = served["per_record"][name]["detector"]
        assert det["reference_beats"] == len(symbols) and det["detections"] == len(times)
        assert det["matched"] + det["missed"] == len(symbols)  # matched or missed, never both
        assert det["matched"] + det["extra"] == len(times)  # each detection counted once
        for c, m in served["per_record"][name]["classes"].items():
            assert m["support"] == sum(AAMI_MAP[s] == c for s in symbols)
        n_ref += len(symbols)
        given += [labels.count(c) for c in AAMI_CLASSES]
    cm = np.array(served["bxb"]["confusion_matrix"])
    assert cm.shape == (len(AAMI_CLASSES) + 1,) * 2 and cm[-1, -1] == 0
    assert cm[:-1].sum() == n_ref and cm[:, :-1].sum(axis=0).tolist() == given.tolist()
    gross = served["gross"]
    assert gross["detector"]["missed"] == cm[:-1, -1].sum() and gross["detector"]["se"] > 0.85
    assert gross["classes"]["V"]["support"] == cm[2].sum() > 5  # 119's bigeminy
    assert served["headline"]["V_se"] == pytest.approx(100 * cm[2, 2] / cm[2].sum(), abs=0.01)
    assert served["bxb"]["context_s"] == 20.0 and served["scalar_inputs"] == "served:20"
    edge = served["bxb"]["strips"]
    assert edge["missed_near_strip_start"] + edge["missed_near_strip_end"] <= cm[:-1, -1].sum()
    markdown = (tmp_path / "both" / "report.md").read_text()
    assert "| **this model, served path, own detector + 20 s context** |" in markdown
    assert "| *extra detection* |" in markdown and "not detected |" in markdown
    assert (tmp_path / "both" / "confusion-served.png").is_file()
    # the served kind leaves the record figures as they are without it
    alone, _ = _evaluate(model_dir, short_db, "record", tmp_path / "alone")
    drop = {"seconds", "inputs", "served_bxb"}
    assert {k: v for k, v in report.items() if k not in drop} == {
        k: v for k, v in alone.items() if k not in drop
    }
    assert printed["served_bxb"]["detector"] == served["gross"]["detector"]
    lone, _ = _evaluate(model_dir, short_db, "served", tmp_path / "lone")
    assert lone["r_peaks"].startswith("the served path") and lone["bxb"]["context_s"] == 0.0
    assert lone["gross"]["beats"] == n_ref


@pytest.mark.parametrize("bad", ["served,served:60", "served:abc", "served:601", "serve"])
def test_bad_served_inputs_are_refused(
    bad: str, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARAMSTACK_HOME", str(tmp_path))
    args = ["evaluate", "--model-dir", str(model_dir), "--db", str(MITDB), "--records", "100",
            "--inputs", bad]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and isinstance(result.exception, InvalidInput)
    assert "served" in str(result.exception)
