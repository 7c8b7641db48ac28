"""The feature model's AF gate: the AF features as model inputs, the gate inside the graph,
trained end to end on real MIT-BIH records (reduced size), exported and served on strips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from paramstack.config import Settings
from paramstack.ecg.beats import BEAT_FEATURES, GATE_FEATURES
from paramstack.ecg.config import load_config
from paramstack.ecg.models import build_model
from paramstack.ecg.rhythm import af_columns
from paramstack.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[1]
MITDB = ROOT.parent / "shared" / "data" / "mitdb"
TINY = ROOT / "configs" / "ecg" / "tiny.yaml"
CV = ["arch=ensemble", "arch_kwargs={members: [resnet1d, resnet1d, resnet1d]}", "cv_folds=3"]
OFFSET = len(BEAT_FEATURES) - len(GATE_FEATURES)


def _regular_and_irregular(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    regular = np.cumsum(np.full(40, 0.8) + rng.normal(0, 0.005, 40))
    irregular = np.cumsum(rng.uniform(0.4, 1.1, 40))
    return regular, irregular


def test_af_columns_separate_rhythms_and_need_five_beats() -> None:
    regular, irregular = _regular_and_irregular()
    reg, irr = af_columns(regular), af_columns(irregular)
    assert reg.shape == irr.shape == (40, len(GATE_FEATURES))
    assert irr[:, 0].mean() > 5 * reg[:, 0].mean()  # RR spread (cv) of AF-like vs sinus
    assert not af_columns(regular[:4]).any()  # too few beats to judge: the gate stays open


def test_gate_drops_the_feature_head_only_for_gated_beats() -> None:
    model = build_model(
        "ensemble", window=144, n_rr=9, n_classes=5, members=("resnet1d",),
        feature_model=13, af_gate=(OFFSET, len(GATE_FEATURES)),
    )  # fmt: skip
    model.eval()
    assert model.features is not None and model.af_gate is not None
    torch.manual_seed(0)
    with torch.no_grad():
        model.features.linear.weight.normal_()
        model.features.weight.fill_(2.0)
        model.af_gate.coef[0] = 1.0  # "AF" where the first AF column is above 0
        model.af_gate.intercept.fill_(0.0)
    beats, rr = torch.randn(6, 2, 144), torch.rand(6, len(BEAT_FEATURES)) + 0.5
    rr[:3, OFFSET] = -1.0  # not gated
    with torch.no_grad():
        full = model(beats, rr)
        model.features.weight.fill_(0.0)
        cnn = model(beats, rr)
    assert not torch.allclose(full[:3], cnn[:3])  # the head acts outside AF
    assert torch.equal(full[3:], cnn[3:])  # and is dropped inside it
    with pytest.raises(InvalidInput, match="af_gate"):
        build_model("ensemble", window=144, n_rr=9, n_classes=5, members=("resnet1d",),
                    af_gate=(OFFSET, 8))  # fmt: skip
    with pytest.raises(InvalidInput, match="feature_model_af_gate"):
        load_config(TINY, [*CV, "feature_model_af_gate=true"])  # no feature model to gate


@pytest.mark.slow
def test_gated_model_trains_exports_and_serves_an_af_strip(tmp_path: Path) -> None:
    """With an AF record among the training records the gate is fitted, the model reads all
    BEAT_FEATURES, export keeps parity, and a strip from AF is served with the head dropped."""
    from paramstack.ecg.export import export_ecg_onnx
    from paramstack.ecg.records import read_record
    from paramstack.ecg.strip import analyze_strip, onnx_runner, strip_options
    from paramstack.ecg.train import train_ecg

    settings = Settings(home=tmp_path)
    out = tmp_path / "gated"
    config = load_config(
        TINY,
        [f"db={MITDB}", f"out_dir={out}", "epochs=1", "mlflow=false", *CV,
         "records=[106, 201, 208]", "feature_model_weight=2.0", "feature_model_inputs=rr+p",
         "feature_model_af_gate=true", "bias_objective=s_f2"],
    )  # fmt: skip
    trained = train_ecg(config, settings=settings)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["rr_features"] == list(BEAT_FEATURES)
    calibration = meta["training"]["calibration"]
    assert calibration["objective"].startswith("mean of S F2")
    assert calibration["feature_model"]["af_gate"]["fitted"] is True
    gate = trained.model.af_gate
    assert gate is not None and float(gate.coef.abs().sum()) > 0

    record = read_record(MITDB, "201")  # atrial fibrillation from its start to 378 s
    regular, _ = _regular_and_irregular()
    in_af = af_columns(record.beat_samples[:60] / record.fs)
    rr = torch.rand(2 * 30, len(BEAT_FEATURES)) + 0.5
    rr[:30, OFFSET:] = torch.from_numpy(in_af[15:45])
    rr[30:, OFFSET:] = torch.from_numpy(af_columns(regular)[5:35])
    with torch.no_grad():
        gated = gate(rr)
    assert gated[:30].mean() >= 0.6 and gated[30:].mean() <= 0.1  # most AF beats, no sinus

    artifact = export_ecg_onnx(out, parity_records=["201"], settings=settings)
    assert artifact.meta["metrics"]["parity_max_abs_diff"] <= 1e-4
    assert artifact.meta["input_shape"] == [-1, 2 * 144 + len(BEAT_FEATURES)]
    session = ort.InferenceSession(str(artifact.onnx_path), providers=["CPUExecutionProvider"])
    start = int(record.fs * 60)
    strip = record.signal[start : start + int(record.fs * 10)]
    result = analyze_strip(onnx_runner(session), strip, record.fs, **strip_options(artifact.meta))
    assert result["summary"]["beats_classified"] >= 8
