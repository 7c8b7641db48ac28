"""Daily aggregation matches the logs it summarises (both databases, and through HTTP)."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, insert, select

from paramstack.config import Settings
from paramstack.registry import versions as registry
from paramstack.registry.daily_metrics import aggregate_day, list_daily
from paramstack.registry.versions import Registration
from paramstack.store.engine import make_engine, session_factory, transaction
from paramstack.store.tables import InferenceLog, PredictionFeedback
from paramstack.vision.digits import digit_images, digit_png_bytes
from tests.conftest import DigitsModel, LiveServer, register_digits

Server = Callable[[Settings], AbstractContextManager[LiveServer]]
DAY = date(2026, 3, 14)


def test_aggregate_matches_logs(engine: Engine, digits_model: DigitsModel, tmp_path: Path) -> None:
    factory = session_factory(engine)
    with transaction(factory) as s:
        version = registry.register(
            s, Registration(name="digits", artifact=digits_model.onnx_path), tmp_path / "a"
        )
    rng = np.random.default_rng(0)
    start = datetime(2026, 3, 14, tzinfo=UTC)
    rows = []
    for i in range(300):
        ok = i % 10 != 0
        rows.append({
            "request_id": f"r{i}", "model_version_id": version.id, "input_sha256": "0" * 64,
            "status": "ok" if ok else "error", "status_code": 200 if ok else 400,
            "latency_ms": float(rng.gamma(2.0, 1.5)), "confidence": float(rng.uniform(0.5, 1)),
            "result_class": str(i % 10) if ok else None, "cached": i % 7 == 0,
            "created_at": start + timedelta(minutes=4 * i),  # 300 rows span 20 hours
        })  # fmt: skip
    rows.append({**rows[1], "request_id": "next-day", "created_at": start + timedelta(days=1)})
    feedback = [{"request_id": f"r{i}", "label": str(i % 10 if i % 3 else 0)} for i in range(60)]
    with transaction(factory) as s:
        s.execute(insert(InferenceLog), rows)
        s.execute(insert(PredictionFeedback), feedback)
    with transaction(factory) as s:
        first = aggregate_day(s, DAY)
        again = aggregate_day(s, DAY)  # idempotent: replaces, never duplicates
    assert len(first) == len(again) == 1
    with factory() as s:
        [metric] = list_daily(s, DAY)
    day_rows = rows[:300]
    ok_rows = [r for r in day_rows if r["status"] == "ok"]
    latencies = np.array([r["latency_ms"] for r in ok_rows])
    assert metric.total_requests == 300
    assert metric.successful_requests == len(ok_rows) == 270
    assert metric.cache_hits == sum(1 for r in ok_rows if r["cached"])
    assert metric.mean_latency_ms == pytest.approx(latencies.mean())
    assert metric.p95_latency_ms == pytest.approx(np.percentile(latencies, 95))
    assert metric.p99_latency_ms == pytest.approx(np.percentile(latencies, 99))
    assert metric.mean_confidence == pytest.approx(np.mean([r["confidence"] for r in ok_rows]))
    labelled = [(f, r) for f in feedback for r in ok_rows if r["request_id"] == f["request_id"]]
    assert metric.labelled_requests == len(labelled)
    correct = sum(1 for f, r in labelled if f["label"] == r["result_class"])
    assert metric.accuracy == pytest.approx(correct / len(labelled))
    assert 0 < metric.accuracy < 1


def test_feedback_through_http_feeds_daily_accuracy(
    settings: Settings, digits_model: DigitsModel, live_server: Server
) -> None:
    register_digits(settings, digits_model)
    images, labels = digit_images()
    sent = digits_model.heldout_indices[:40]
    with live_server(settings) as server, server.client() as client:
        for i in sent:
            body = {"image": base64.b64encode(digit_png_bytes(images[i])).decode()}
            r = client.post("/v1/models/digits/predict", json=body)
            fb = client.post(
                f"/v1/predictions/{r.headers['x-request-id']}/feedback",
                json={"label": str(labels[i])},
            )
            assert fb.status_code == 202
        bad = client.post("/v1/predictions/x/feedback", json={"label": ""})
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
        time.sleep(0.2)
    engine = make_engine(settings.resolved_database_url)
    with transaction(session_factory(engine)) as s:
        [metric] = aggregate_day(s, datetime.now(UTC).date())
        predictions = list(s.scalars(select(InferenceLog.result_class)))
    engine.dispose()
    expected = sum(p == str(labels[i]) for p, i in zip(predictions, sent, strict=True)) / len(sent)
    assert metric.total_requests == metric.labelled_requests == len(sent)
    assert metric.accuracy == pytest.approx(expected)
    assert metric.accuracy >= 0.9
