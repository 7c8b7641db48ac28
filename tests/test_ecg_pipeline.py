"""The ECG pipeline at reduced size on real MIT-BIH records: train (loss falls, weights move,
resume, MLflow), evaluate, ONNX export with parity, registry lineage, the CLI, and strips."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from paramstack.cli.ecg import app
from paramstack.config import Settings
from paramstack.ecg.config import load_config
from paramstack.ecg.export import EcgArtifact, export_ecg_onnx, register_ecg
from paramstack.ecg.models import available_archs, build_model
from paramstack.ecg.records import read_record
from paramstack.ecg.strip import analyze_strip, onnx_runner, strip_options
from paramstack.ecg.train import TrainedEcg, new_model, train_ecg
from paramstack.errors import InvalidInput
from paramstack.registry import versions as registry
from paramstack.store import migrate
from paramstack.store.engine import make_engine, session_factory, transaction

ROOT = Path(__file__).resolve().parents[1]
MITDB = ROOT.parent / "shared" / "data" / "mitdb"
TINY = ROOT / "configs" / "ecg" / "tiny.yaml"
EVAL_RECORDS = ["100", "119"]


@dataclass
class Tiny:
    trained: TrainedEcg
    initial: dict[str, torch.Tensor]
    settings: Settings
    artifact: EcgArtifact


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    home = tmp_path_factory.mktemp("ecg-home")
    settings = Settings(home=home)
    config = load_config(TINY, [f"db={MITDB}", f"out_dir={home / 'model'}"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        initial = {k: v.clone() for k, v in new_model(config).state_dict().items()}
    trained = train_ecg(config, settings=settings)
    artifact = export_ecg_onnx(trained.out_dir, parity_records=EVAL_RECORDS, settings=settings)
    return Tiny(trained, initial, settings, artifact)


@pytest.mark.slow
def test_training_lowers_loss_and_moves_weights(tiny: Tiny) -> None:
    losses = tiny.trained.epoch_losses
    assert len(losses) == 3 and losses[-1] < 0.7 * losses[0]
    after = tiny.trained.model.state_dict()
    moved = [
        k for k, v in tiny.initial.items() if v.is_floating_point() and not torch.equal(v, after[k])
    ]
    assert any("encoder" in k for k in moved) and any("head" in k for k in moved)
    meta = json.loads((tiny.trained.out_dir / "meta.json").read_text())
    assert meta["task"] == "ecg-beats" and meta["training"]["records"] == ["106", "118", "208"]
    assert meta["training"]["mlflow_run_id"] == tiny.trained.run_id
    assert (tiny.settings.home / "mlflow.db").is_file()


@pytest.mark.slow
def test_mlflow_run_holds_params_metrics_and_model(tiny: Tiny) -> None:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tiny.settings.home.resolve() / 'mlflow.db'}")
    run = mlflow.get_run(tiny.trained.run_id)
    assert run.info.status == "FINISHED" and run.data.params["arch"] == "resnet1d"
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "train_loss")
    assert [m.value for m in history] == pytest.approx(tiny.trained.epoch_losses)
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"model.pt", "meta.json"} <= artifacts


class _Stop(Exception):
    pass


def _stop_after_two(epoch: int, _total: int, _loss: float) -> None:
    if epoch == 2:
        raise _Stop


@pytest.mark.slow
def test_resume_continues_from_the_checkpoint(tiny: Tiny) -> None:
    out = tiny.settings.home / "resume"
    config = load_config(TINY, [f"db={MITDB}", f"out_dir={out}", "mlflow=false"])
    with pytest.raises(_Stop):  # the job dies after epoch 2
        train_ecg(config, progress=_stop_after_two, settings=tiny.settings)
    assert not (out / "model.pt").exists() and (out / "checkpoint.pt").is_file()
    epochs_run: list[int] = []
    resumed = train_ecg(
        config, progress=lambda e, _t, _l: epochs_run.append(e), settings=tiny.settings
    )
    assert epochs_run == [3]  # only the missing epoch ran
    assert resumed.epoch_losses == pytest.approx(tiny.trained.epoch_losses, rel=1e-6)


@pytest.mark.slow
def test_onnx_parity_and_registry_lineage(tiny: Tiny) -> None:
    meta = tiny.artifact.meta
    assert meta["metrics"]["parity_max_abs_diff"] <= 1e-4
    assert meta["input_shape"] == [-1, 2 * 144 + 9] and meta["output_shape"] == [-1, 5]
    engine = make_engine(f"sqlite:///{tiny.settings.home / 'registry.db'}")
    migrate.upgrade(engine)
    with transaction(session_factory(engine)) as session:
        number = register_ecg(session, tiny.artifact, tiny.settings.resolved_artifacts_dir)
    with transaction(session_factory(engine)) as session:
        version = registry.get_version(session, "ecg-beats", number)
        lineage, metrics = dict(version.lineage), dict(version.metrics)
        assert version.class_labels == ["N", "S", "V", "F", "Q"]
    engine.dispose()
    assert lineage["task"] == "ecg-beats" and metrics["task"] == "ecg-beats"
    assert lineage["model_fs"] == 180.0 and lineage["window"]["before"] == 64
    assert lineage["input_layout"]["rr"] == [288, 297]
    assert lineage["rr_normalisation"]["applied_inside_model"] is True
    assert lineage["mlflow_run_id"] == tiny.trained.run_id
    assert strip_options(lineage)["window"] == (64, 80)


@pytest.mark.slow
def test_analyze_strip_on_a_real_10s_mitdb_strip(tiny: Tiny) -> None:
    record = read_record(MITDB, "119")  # ventricular bigeminy episodes
    start = int(record.fs * 20)
    strip = record.signal[start : start + int(record.fs * 10)]
    session = ort.InferenceSession(str(tiny.artifact.onnx_path), providers=["CPUExecutionProvider"])
    calls: list[int] = []

    def run_model(beats: np.ndarray, rr: np.ndarray) -> np.ndarray:
        calls.append(len(beats))
        return onnx_runner(session)(beats, rr)

    out = analyze_strip(run_model, strip, record.fs, **strip_options(tiny.artifact.meta))
    ref = [
        s
        for s, sym in zip(record.beat_samples, record.beat_symbols, strict=True)
        if start <= s < start + len(strip) and sym in "NV"
    ]
    summary = out["summary"]
    assert calls == [summary["beats_classified"]]  # one batched call
    assert abs(summary["beats_detected"] - len(ref)) <= 1
    assert summary["heart_rate_bpm"] == pytest.approx(60 * len(ref) / 10, rel=0.15)
    assert sum(summary["counts"].values()) == summary["beats_classified"] == len(out["beats"])
    beat = out["beats"][0]
    assert 0 <= beat["time_s"] <= 10 and sum(beat["probabilities"].values()) == pytest.approx(1)
    assert summary["hrv"]["mean_hr_bpm"] > 0 and out["timings_ms"]["total"] > 0
    # the same strip at 250 Hz (another device) gives the same beats
    from paramstack.ecg.beats import resample

    again = analyze_strip(
        run_model, resample(strip, record.fs, 250.0), 250.0, **strip_options(tiny.artifact.meta)
    )
    assert abs(again["summary"]["beats_detected"] - summary["beats_detected"]) <= 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signal", "fs", "code"),
    [
        (np.sin(np.arange(360 * 2) / 20.0), 360.0, "signal_too_short"),
        (np.full(3600, 0.2), 360.0, "flat_signal"),
        (
            np.where(np.arange(3600) == 7, np.nan, 0.5 * np.sin(np.arange(3600))),
            360.0,
            "non_finite_signal",
        ),
        (np.sin(np.arange(3600) / 20.0), 3.0e5, "invalid_rate"),
        (np.sin(np.arange(3600) / 20.0), float("nan"), "invalid_rate"),
        (np.zeros((2, 3600)), 360.0, "invalid_signal"),
    ],
)
def test_bad_strips_get_clear_errors(tiny: Tiny, signal: np.ndarray, fs: float, code: str) -> None:
    session = ort.InferenceSession(str(tiny.artifact.onnx_path), providers=["CPUExecutionProvider"])
    with pytest.raises(InvalidInput) as err:
        analyze_strip(onnx_runner(session), signal, fs, **strip_options(tiny.artifact.meta))
    assert err.value.code == code and err.value.message


@pytest.mark.slow
def test_a_much_too_high_declared_rate_is_refused(tiny: Tiny) -> None:
    record = read_record(MITDB, "100")
    strip = record.signal[: int(record.fs * 60)]
    session = ort.InferenceSession(str(tiny.artifact.onnx_path), providers=["CPUExecutionProvider"])
    runner = onnx_runner(session)
    with pytest.raises(InvalidInput) as err:  # 360 Hz samples declared as 2160 Hz
        analyze_strip(runner, strip, 2160.0, **strip_options(tiny.artifact.meta))
    assert err.value.code == "no_beats" and "sampling rate" in err.value.message


def test_evaluate_scores_strips_served_with_context(
    tiny: Tiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Session 7: ``--inputs strip,context:60`` scores the same beats on lone 10 s strips and
    on strips served with the 60 s before them, side by side in JSON, Markdown and PNG."""
    monkeypatch.setenv("PARAMSTACK_HOME", str(tiny.settings.home))
    folder = tiny.settings.home / "context-report"
    args = ["evaluate", "--model-dir", str(tiny.trained.out_dir), "--db", str(MITDB),
            "--records", "119", "--inputs", "strip,context:60", "--report-dir", str(folder),
            "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["headline"]["inputs"] == "strip"
    assert printed["served_context"]["inputs"] == "context:60"
    report = json.loads((folder / "report.json").read_text())
    served = report["served_context"]
    assert report["scalar_inputs"] == "strip" and "served_strip" not in report
    assert served["gross"]["beats"] == report["gross"]["beats"] > 1500
    assert served["headline"]["accuracy"] == printed["served_context"]["accuracy"]
    assert served["confusion_matrix"] != report["confusion_matrix"]  # other inputs
    markdown = (folder / "report.md").read_text()
    assert "| **this model, served 10 s strip + 60 s context inputs** |" in markdown
    assert "context:60 S Se" in markdown and (folder / "confusion-context.png").is_file()
    for bad in ("context:60,context:300", "strip,strip", "context:abc"):
        result = CliRunner().invoke(app, [*args[:7], "--inputs", bad])
        assert isinstance(result.exception, InvalidInput), bad


@pytest.mark.slow
def test_cli_evaluate_export_and_scores(tiny: Tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARAMSTACK_HOME", str(tiny.settings.home))
    runner = CliRunner()
    model_dir = str(tiny.trained.out_dir)
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--model-dir",
            model_dir,
            "--db",
            str(MITDB),
            "--records",
            ",".join(EVAL_RECORDS),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    headline = json.loads(result.output)
    assert headline["beats"] > 4000 and 0 <= headline["headline"]["accuracy"] <= 100
    report = tiny.trained.out_dir / "report-custom"
    assert {"report.json", "report.md", "confusion.png", "anchors.png"} <= {
        p.name for p in report.iterdir()
    }
    markdown = (report / "report.md").read_text()
    assert "de Chazal et al. 2004" in markdown
    # session 7: the served 10 s strip inputs beside the whole-record ones, by default
    both = json.loads((report / "report.json").read_text())
    strip = both["served_strip"]
    assert both["inputs"] == "both" and both["scalar_inputs"] == "record"
    assert strip["scalar_inputs"] == "strip" and strip["gross"]["beats"] == both["gross"]["beats"]
    assert strip["confusion_matrix"] != both["confusion_matrix"]  # other inputs, other calls
    assert headline["served_strip"]["accuracy"] == strip["headline"]["accuracy"]
    assert "this model, served 10 s strip inputs" in markdown and "strip S Se" in markdown
    assert (report / "confusion-strip.png").is_file()
    from paramstack.ecg.evaluate import evaluate_model

    only = evaluate_model(
        tiny.trained.out_dir,
        db=MITDB,
        records=EVAL_RECORDS,
        inputs="strip",
        report_dir=tiny.settings.home / "strip-only",
        settings=tiny.settings,
    )
    assert only["scalar_inputs"] == "strip" and "served_strip" not in only
    assert only["confusion_matrix"] == strip["confusion_matrix"]  # one implementation
    bad = ["evaluate", "--model-dir", model_dir, "--records", "100", "--inputs", "window"]
    result = runner.invoke(app, bad)
    assert isinstance(result.exception, InvalidInput) and "inputs" in result.exception.message
    result = runner.invoke(
        app,
        [
            "export",
            "--model-dir",
            model_dir,
            "--name",
            "ecg-tiny",
            "--records",
            ",".join(EVAL_RECORDS),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "registered ecg-tiny v1" in result.output
    result = runner.invoke(
        app,
        [
            "news2",
            "--resp",
            "26",
            "--spo2",
            "95",
            "--sbp",
            "95",
            "--pulse",
            "115",
            "--consciousness",
            "alert",
            "--temp",
            "37",
        ],
    )
    assert result.exit_code == 0 and json.loads(result.output)["total"] == 8
    result = runner.invoke(
        app,
        [
            "mews",
            "--sbp",
            "120",
            "--pulse",
            "70",
            "--resp",
            "12",
            "--temp",
            "37",
            "--consciousness",
            "voice",
        ],
    )
    assert result.exit_code == 0 and json.loads(result.output)["total"] == 1
    result = runner.invoke(
        app,
        [
            "news2",
            "--resp",
            "16",
            "--spo2",
            "101",
            "--sbp",
            "120",
            "--pulse",
            "70",
            "--consciousness",
            "alert",
            "--temp",
            "37",
        ],
    )
    assert isinstance(result.exception, InvalidInput) and "spo2" in result.exception.message


@pytest.mark.slow
def test_intra_patient_option_is_labelled_and_kept_apart(tiny: Tiny) -> None:
    from paramstack.ecg.evaluate import evaluate_model

    out = tiny.settings.home / "intra"
    config = load_config(
        TINY,
        [
            f"db={MITDB}",
            f"out_dir={out}",
            "mlflow=false",
            "epochs=1",
            "intra_patient=true",
            "records=[100, 119]",
        ],
    )
    trained = train_ecg(config, settings=tiny.settings)
    assert sum(trained.class_counts.values()) == 960  # 80 % of 2 x 600 beats
    report = evaluate_model(out, split="intra", settings=tiny.settings)
    assert report["gross"]["beats"] == 240 and "inflated" in report["split_note"]
    assert "inflated" in (out / "report-intra" / "report.md").read_text()
    with pytest.raises(InvalidInput, match="intra"):
        evaluate_model(out, split="ds2", settings=tiny.settings)
    with pytest.raises(InvalidInput, match="intra"):
        evaluate_model(tiny.trained.out_dir, split="intra", settings=tiny.settings)


@pytest.mark.slow
def test_fine_grained_mode_predicts_beat_symbols(tiny: Tiny) -> None:
    from paramstack.ecg.evaluate import evaluate_model
    from paramstack.ecg.records import BEAT_SYMBOLS

    out = tiny.settings.home / "fine"
    overrides = [f"db={MITDB}", f"out_dir={out}", "mlflow=false", "epochs=2", "labels=symbols",
                 "records=[109, 118]"]  # fmt: skip
    trained = train_ecg(load_config(TINY, overrides), settings=tiny.settings)
    assert trained.model.n_classes == len(BEAT_SYMBOLS) >= 15
    assert trained.class_counts["L"] > 0 and trained.class_counts["R"] > 0  # 109: LBBB, 118: RBBB
    report = evaluate_model(out, records=["111", "212"], settings=tiny.settings)
    symbols = report["symbols"]["gross"]["classes"]
    assert set(symbols) == set(BEAT_SYMBOLS)
    assert symbols["L"]["support"] > 0 and symbols["R"]["support"] > 0  # 111: L, 212: R
    assert set(report["gross"]["classes"]) == {"N", "S", "V", "F", "Q"}  # mapped back to AAMI
    assert report["gross"]["beats"] == report["symbols"]["gross"]["beats"]
    assert "Per symbol" in (out / "report-custom" / "report.md").read_text()
    with pytest.raises(InvalidInput, match="labels"):
        load_config(TINY, ["labels=rhythm"])


@pytest.mark.slow
def test_ensemble_members_each_learn(tiny: Tiny) -> None:
    from paramstack.ecg.beats import BeatWindow
    from paramstack.ecg.dataset import load_beats

    out = tiny.settings.home / "ensemble"
    config = load_config(
        TINY,
        [
            f"db={MITDB}",
            f"out_dir={out}",
            "mlflow=false",
            "epochs=2",
            "arch=ensemble",
            "arch_kwargs={members: [resnet1d, resnet1d]}",
            "max_beats_per_record=300",
        ],
    )
    trained = train_ecg(config, settings=tiny.settings)
    assert trained.epoch_losses[-1] < trained.epoch_losses[0]
    data = load_beats(
        MITDB,
        ["106", "118", "208"],
        180.0,
        BeatWindow(64, 80),
        cache_dir=tiny.settings.home / "cache" / "ecg",
    )
    beats, rr = torch.from_numpy(data.beats), torch.from_numpy(data.rr)
    with torch.inference_mode():
        for member in trained.model.members:  # each member is a classifier on its own
            accuracy = (member(beats, rr).argmax(1).numpy() == data.labels).mean()
            assert accuracy > 0.6


def test_model_registry_by_name() -> None:
    assert {"resnet1d", "cnn_lstm", "transformer", "ensemble"} <= set(available_archs())
    for name in ("cnn_lstm", "transformer", "ensemble"):
        model = build_model(name, window=144, n_rr=9, n_classes=5).eval()
        with torch.inference_mode():
            assert model(torch.randn(3, 2, 144), torch.rand(3, 9)).shape == (3, 5)
    with pytest.raises(InvalidInput, match="valid: cnn_lstm, ensemble, resnet1d, transformer"):
        build_model("lenet", window=144, n_rr=9, n_classes=5)
    with pytest.raises(InvalidInput, match="bad arguments for model 'resnet1d'"):
        build_model("resnet1d", window=144, n_rr=9, n_classes=5, **{"width:8": None})


def test_config_overrides_and_unknown_keys() -> None:
    config = load_config(TINY, ["epochs=7", "arch_kwargs={width: 4}", "records=[100]"])
    assert config.epochs == 7 and config.arch_kwargs == {"width": 4} and config.records == ["100"]
    with pytest.raises(InvalidInput, match="unknown config keys epoch"):
        load_config(TINY, ["epoch=7"])
    with pytest.raises(InvalidInput, match="key=value"):
        load_config(TINY, ["epochs"])


def test_strip_and_scores_import_without_torch() -> None:
    code = (
        "import sys, paramstack.ecg.strip, paramstack.ecg.scores; "
        "assert 'torch' not in sys.modules and 'mlflow' not in sys.modules; "
        "assert 'neurokit2' not in sys.modules and 'paramstack.gateway' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
