"""ECG strips through the gateway's predict endpoint with a real (reduced-size) trained model:
JSON samples at any rate, WFDB uploads, and clear 4xx for bad signals."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly
from sqlalchemy import select

from paramstack.config import Settings
from paramstack.ecg.config import load_config
from paramstack.ecg.export import export_ecg_onnx, register_ecg
from paramstack.ecg.records import read_record
from paramstack.ecg.train import train_ecg
from paramstack.registry import versions as registry
from paramstack.store import migrate
from paramstack.store.engine import make_engine, session_factory, transaction
from paramstack.store.tables import InferenceLog, Stage
from tests.conftest import LiveServer, run_server

ROOT = Path(__file__).resolve().parents[1]
MITDB = ROOT.parent / "shared" / "data" / "mitdb"
PREDICT = "/v1/models/ecg-beats/predict"
FS = 360


@pytest.fixture(scope="module")
def ecg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Settings]]:
    home = tmp_path_factory.mktemp("ecg-serve")
    settings = Settings(home=home, registry_refresh_s=0.5, log_flush_interval_s=0.05)
    engine = make_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    config = load_config(ROOT / "configs/ecg/tiny.yaml",
                         [f"db={MITDB}", f"out_dir={home / 'model'}", "mlflow=false"])  # fmt: skip
    trained = train_ecg(config, settings=settings)
    artifact = export_ecg_onnx(
        trained.out_dir,
        parity_records=["100"],
        rhythm_records=["201", "203", "100"],
        settings=settings,
    )
    with transaction(session_factory(engine)) as s:
        number = register_ecg(s, artifact, settings.resolved_artifacts_dir)
        registry.set_stage(s, "ecg-beats", number, Stage.PRODUCTION)
    engine.dispose()
    with run_server(settings) as server:
        yield server, settings


def strip(seconds: float = 10.0, start_s: float = 60.0, record_name: str = "100") -> np.ndarray:
    record = read_record(MITDB, record_name)
    first = int(start_s * FS)
    return record.signal[first : first + int(seconds * FS)]


def test_json_strip_gives_beats_rhythm_and_timings(
    ecg_server: tuple[LiveServer, Settings],
) -> None:
    server, settings = ecg_server
    with server.client() as client:
        r = client.post(PREDICT, json={"signal": strip().tolist(), "fs": FS})
    assert r.status_code == 200, r.text
    body = r.json()
    beats = body["beats"]
    assert 8 <= len(beats) <= 16  # record 100 runs at about 75 bpm
    assert all(0 <= b["time_s"] <= 10 for b in beats)
    assert [b["time_s"] for b in beats] == sorted(b["time_s"] for b in beats)
    for beat in beats:
        assert math.isclose(sum(beat["probabilities"].values()), 1.0, abs_tol=1e-4)
        assert beat["class"] == max(beat["probabilities"], key=beat["probabilities"].get)
    summary = body["summary"]
    assert 55 <= summary["heart_rate_bpm"] <= 95
    assert sum(summary["counts"].values()) == summary["beats_classified"] == len(beats)
    assert body["prediction"] in summary["counts"]
    assert body["model"]["domain"] == "ecg"
    perf = body["performance"]
    assert 0 < perf["inference_ms"] <= perf["total_ms"]
    query = select(InferenceLog).where(InferenceLog.request_id == r.headers["x-request-id"])
    engine = make_engine(settings.resolved_database_url)
    deadline = time.monotonic() + 10
    rows: list[InferenceLog] = []
    while not rows and time.monotonic() < deadline:  # the log writer flushes every 50 ms
        time.sleep(0.05)
        with session_factory(engine)() as s:
            rows = list(s.scalars(query))
    engine.dispose()
    assert [(row.status, row.result_class) for row in rows] == [("ok", body["prediction"])]


@pytest.mark.parametrize(
    ("record", "start_s", "af", "vf"),
    [
        ("100", 60.0, False, False),  # sinus rhythm
        ("221", 1020.0, True, False),  # DS2 record in AF (the AF screen never saw this patient)
        ("207", 1560.0, None, True),  # ventricular flutter: no QRS to time
    ],
)
def test_strip_summary_screens_for_af_and_vf(
    ecg_server: tuple[LiveServer, Settings], record: str, start_s: float, af: bool | None, vf: bool
) -> None:
    server, _settings = ecg_server
    with server.client() as client:
        r = client.post(PREDICT, json={"signal": strip(10, start_s, record).tolist(), "fs": FS})
    if r.status_code == 400:  # VF: the QRS detector may find no usable beats at all
        assert vf and r.json()["error"]["code"] in ("no_beats", "implausible_rate")
        return
    assert r.status_code == 200, r.text
    rhythm = r.json()["summary"]["rhythm"]
    assert bool(rhythm["vf_episodes_s"]) is vf, rhythm
    if af is not None:
        assert rhythm["af_suspected"] is af, rhythm


def test_intervals_on_request(ecg_server: tuple[LiveServer, Settings]) -> None:
    server, _settings = ecg_server
    with server.client() as client:
        plain = client.post(PREDICT, json={"signal": strip().tolist(), "fs": FS}).json()
        measured = client.post(
            PREDICT, json={"signal": strip().tolist(), "fs": FS, "intervals": True}
        ).json()
        bad = client.post(PREDICT, json={"signal": strip().tolist(), "fs": FS, "intervals": "x"})
    assert plain["summary"]["intervals"] is None
    summary = measured["summary"]["intervals"]
    assert summary["beats_with_st"] >= 5
    assert all("qt_s" in beat and "st_mv" in beat for beat in measured["beats"])
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "intervals"


def test_other_sampling_rates_are_resampled(ecg_server: tuple[LiveServer, Settings]) -> None:
    server, _ = ecg_server
    at_360 = strip()
    at_250 = resample_poly(at_360, 25, 36)
    with server.client() as client:
        a = client.post(PREDICT, json={"signal": at_360.tolist(), "fs": 360}).json()
        b = client.post(PREDICT, json={"signal": at_250.tolist(), "fs": 250}).json()
    assert abs(len(a["beats"]) - len(b["beats"])) <= 1
    assert abs(a["summary"]["heart_rate_bpm"] - b["summary"]["heart_rate_bpm"]) < 3


def test_wfdb_upload(ecg_server: tuple[LiveServer, Settings], tmp_path: Path) -> None:
    import wfdb

    server, _ = ecg_server
    samples = strip()
    wfdb.wrsamp("strip", fs=FS, units=["mV"], sig_name=["MLII"], p_signal=samples[:, None],
                fmt=["16"], write_dir=str(tmp_path))  # fmt: skip
    files = {
        "header": ("strip.hea", (tmp_path / "strip.hea").read_bytes(), "text/plain"),
        "data": ("strip.dat", (tmp_path / "strip.dat").read_bytes(), "application/octet-stream"),
    }
    with server.client() as client:
        uploaded = client.post(PREDICT, files=files)
        as_json = client.post(PREDICT, json={"signal": samples.tolist(), "fs": FS})
        whole = client.post(PREDICT, files={
            "header": ("100.hea", (MITDB / "100.hea").read_bytes(), "text/plain"),
            "data": ("100.dat", (MITDB / "100.dat").read_bytes(), "application/octet-stream"),
        })  # fmt: skip
    assert uploaded.status_code == 200, uploaded.text
    assert len(uploaded.json()["beats"]) == len(as_json.json()["beats"])
    assert whole.status_code == 400 and whole.json()["error"]["code"] == "signal_too_long"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"signal": [0.1] * 360 * 2, "fs": FS}, "signal_too_short"),
        ({"signal": [0.0] * 360 * 10, "fs": FS}, "flat_signal"),
        ({"signal": [0.5, 0.1] * 1800, "fs": 5}, "invalid_rate"),
        ({"signal": [0.5, 0.1] * 1800}, None),
        ({"signal": "abc", "fs": FS}, None),
    ],
)
def test_bad_signals_get_clear_4xx(
    ecg_server: tuple[LiveServer, Settings], body: dict[str, object], code: str | None
) -> None:
    server, _ = ecg_server
    with server.client() as client:
        r = client.post(PREDICT, json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    if code is not None:
        assert error["code"] == code


@pytest.mark.parametrize("bad", ["NaN", "1e309", "Infinity"])
def test_non_finite_samples_are_refused(ecg_server: tuple[LiveServer, Settings], bad: str) -> None:
    server, _ = ecg_server
    samples = [repr(x) for x in strip()]
    samples[100] = bad
    text = '{"signal": [' + ",".join(samples) + '], "fs": 360}'
    with server.client() as client:
        r = client.post(PREDICT, content=text, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_context_returns_only_the_signals_beats(
    ecg_server: tuple[LiveServer, Settings], tmp_path: Path
) -> None:
    """Session 7: ``context`` (the samples before ``signal``) is analysed with the signal as
    one recording; the signal's beats come back, timed from its start (session 8: with the
    context's last beats whose window crosses its start); equal to sending the concatenation
    and keeping those beats; a WFDB upload says ``context_s``."""
    import wfdb

    server, _ = ecg_server
    context_s = 60.0
    before, signal = strip(context_s, 240.0, "208"), strip(10, 300.0, "208")
    whole = np.concatenate([before, signal])
    wfdb.wrsamp("ctx", fs=FS, units=["mV"], sig_name=["MLII"], p_signal=whole[:, None],
                fmt=["16"], write_dir=str(tmp_path))  # fmt: skip
    files = {
        "header": ("ctx.hea", (tmp_path / "ctx.hea").read_bytes(), "text/plain"),
        "data": ("ctx.dat", (tmp_path / "ctx.dat").read_bytes(), "application/octet-stream"),
    }
    with server.client() as client:
        served = client.post(
            PREDICT, json={"signal": signal.tolist(), "fs": FS, "context": before.tolist()}
        )
        alone = client.post(PREDICT, json={"signal": signal.tolist(), "fs": FS})
        concatenated = client.post(PREDICT, json={"signal": whole.tolist(), "fs": FS})
        uploaded = client.post(PREDICT, files=files, data={"context_s": str(context_s)})
    assert served.status_code == alone.status_code == concatenated.status_code == 200
    assert uploaded.status_code == 200, uploaded.text
    body = served.json()
    beats = body["beats"]
    assert body["summary"]["context_s"] == context_s and alone.json()["summary"]["context_s"] == 0
    # the signal's beats, and the context's last ones whose window crosses its start
    after_s = 80 / 180  # the model's window after the R peak, at its 180 Hz
    assert len(beats) >= 10 and all(-after_s < b["time_s"] < 10 for b in beats)
    carried = sum(b["time_s"] < 0 for b in beats)
    assert body["summary"]["beats_from_context"] == carried
    mine = [b for b in concatenated.json()["beats"] if b["time_s"] > context_s - after_s + 1e-3]
    assert [b["class"] for b in beats] == [b["class"] for b in mine]
    for got, want in zip(beats, mine, strict=True):
        assert got["time_s"] == pytest.approx(want["time_s"] - context_s, abs=1e-3)
        for label, p in got["probabilities"].items():
            assert p == pytest.approx(want["probabilities"][label], abs=1e-5)
    lone = alone.json()["beats"]
    assert [b["probabilities"] for b in beats] != [b["probabilities"] for b in lone]
    wfdb_beats = uploaded.json()["beats"]  # 16-bit storage: the same beats, near-equal scores
    assert uploaded.json()["summary"]["context_s"] == context_s
    assert [round(b["time_s"], 2) for b in wfdb_beats] == [round(b["time_s"], 2) for b in beats]


def test_bad_context_gets_clear_4xx(ecg_server: tuple[LiveServer, Settings]) -> None:
    server, settings = ecg_server
    signal = strip().tolist()
    too_long = np.round(np.tile(strip(), 61), 3).tolist()  # 610 s > ecg_context_max_s
    assert len(too_long) / FS > settings.ecg_context_max_s
    cases = [
        ({"context": too_long}, "context_too_long", "context"),
        ({"context": [0.0] * 3600}, "flat_context", "context"),
        ({"context": "abc"}, "invalid_context", "context"),
        ({"context": [[0.1, 0.2]] * 100}, "invalid_context", "context"),
        ({"context_s": 5}, None, "context_s"),
    ]
    with server.client() as client:
        for extra, code, param in cases:
            r = client.post(PREDICT, json={"signal": signal, "fs": FS, **extra})
            assert r.status_code == 400, r.text
            error = r.json()["error"]
            assert error["type"] == "invalid_request_error" and error["param"] == param
            if code is not None:
                assert error["code"] == code, error
