"""Predict end to end over HTTP with the real ONNX digits model and real uvicorn."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx
import numpy as np
import pytest
from sqlalchemy import Engine, select

from paramstack.config import Settings
from paramstack.gateway.log_writer import LogWriter
from paramstack.registry import versions as registry
from paramstack.store.engine import make_engine, session_factory, transaction
from paramstack.store.tables import InferenceLog, PredictionFeedback, Stage
from paramstack.vision.digits import digit_images, digit_png_bytes
from tests.conftest import DigitsModel, LiveServer, register_digits

Server = Callable[[Settings], AbstractContextManager[LiveServer]]
PREDICT = "/v1/models/digits/predict"


def png(index: int) -> bytes:
    images, _ = digit_images()
    return digit_png_bytes(images[index])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def logs(settings: Settings) -> list[InferenceLog]:
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_factory(engine)() as s:
            return list(s.scalars(select(InferenceLog).order_by(InferenceLog.id)))
    finally:
        engine.dispose()


def assert_error_shape(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["type"], str)
    if code is not None:
        assert body["error"]["code"] == code


def test_heldout_digits_are_classified(
    settings: Settings, digits_model: DigitsModel, live_server: Server
) -> None:
    register_digits(settings, digits_model)
    images, labels = digit_images()
    heldout = digits_model.heldout_indices[:120]
    correct = 0
    with live_server(settings) as server, server.client() as client:
        for n, i in enumerate(heldout):
            data = digit_png_bytes(images[i])
            if n % 2:
                r = client.post(PREDICT, files={"file": ("d.png", data, "image/png")})
            else:
                r = client.post(PREDICT, json={"image": b64(data)})
            assert r.status_code == 200, r.text
            body = r.json()
            assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
            assert body["confidence"] == max(body["probabilities"].values())
            assert body["prediction"] == max(body["probabilities"], key=body["probabilities"].get)
            assert body["model"] == {
                "name": "digits", "version": 1, "type": "onnx",
                "domain": "vision", "stage": "production",
            }  # fmt: skip
            perf = body["performance"]
            assert 0 < perf["inference_ms"] <= perf["total_ms"]
            assert body["metadata"]["request_id"] == r.headers["x-request-id"]
            correct += body["prediction"] == str(labels[i])
    assert correct / len(heldout) >= 0.95
    rows = logs(settings)
    assert len(rows) == len(heldout)
    assert all(row.status == "ok" and row.model_version_id == 1 for row in rows)


def test_result_cache_hits_on_repeated_input(
    settings: Settings, digits_model: DigitsModel, live_server: Server
) -> None:
    register_digits(settings, digits_model)
    with live_server(settings) as server, server.client() as client:
        first = client.post(PREDICT, json={"image": b64(png(3))}).json()
        second = client.post(PREDICT, json={"image": b64(png(3))}).json()
        metrics = client.get("/metrics").text
    assert first["metadata"]["cached"] is False and second["metadata"]["cached"] is True
    assert first["metadata"]["input_hash"] == second["metadata"]["input_hash"]
    assert first["probabilities"] == second["probabilities"]
    assert 'paramstack_result_cache_total{result="hit"} 1.0' in metrics
    assert [row.cached for row in logs(settings)] == [False, True]


def test_bad_inputs_get_clear_4xx_and_log_nothing_wrong(
    settings: Settings, digits_model: DigitsModel, live_server: Server
) -> None:
    register_digits(settings, digits_model)
    good = png(0)
    as_json = {"content-type": "application/json"}
    with live_server(settings) as server, server.client() as client:
        cases = [
            (client.post(PREDICT, json={"image": b64(b"plain text, not an image")}), 400),
            (client.post(PREDICT, json={"image": b64(good[: len(good) // 2])}), 400),
            (client.post(PREDICT, json={"image": "***not base64***"}), 400),
            (client.post(PREDICT, json={"inputs": np.zeros((1, 3, 8, 8)).tolist()}), 400),
            (client.post(PREDICT, json={"image": b64(good), "inputs": [1.0]}), 400),
            (client.post(PREDICT, content=b"{not json", headers=as_json), 400),
            (client.post(PREDICT, content=good, headers={"content-type": "image/png"}), 415),
            (client.post(PREDICT, files={"file": ("a.txt", b"hello", "text/plain")}), 415),
            (client.post(PREDICT, content=b"x" * (11 * 1024 * 1024), headers=as_json), 413),
            (client.post("/v1/models/unknown/predict", json={"image": b64(good)}), 404),
            (client.post(PREDICT + "?version=9", json={"image": b64(good)}), 404),
            (client.post(PREDICT + "?stage=staging", json={"image": b64(good)}), 404),
        ]  # fmt: skip
        for response, status in cases:
            assert_error_shape(response, status)
            assert "x-request-id" in response.headers
        shape = cases[3][0].json()["error"]
        assert shape["code"] == "wrong_shape" and "[1, 3, 8, 8]" in shape["message"]
        ok = client.post(PREDICT, json={"image": b64(good)})
        assert ok.status_code == 200
    rows = logs(settings)
    ok_rows = [r for r in rows if r.status == "ok"]
    assert len(ok_rows) == 1 and ok_rows[0].request_id == ok.headers["x-request-id"]
    # inputs that reached a model version are logged as errors, never with a result
    errors = [r for r in rows if r.status == "error"]
    assert len(errors) == 3
    assert all(r.result is None and r.result_class is None and r.status_code == 400 for r in errors)


def test_streamed_body_over_limit_is_refused(
    settings: Settings, digits_model: DigitsModel, live_server: Server
) -> None:
    register_digits(settings, digits_model)

    def chunks():  # no Content-Length: the limit must hold while the body streams
        for _ in range(11):
            yield b"x" * (1024 * 1024)

    with live_server(settings) as server, server.client() as client:
        response = client.post(
            PREDICT, content=chunks(), headers={"content-type": "application/json"}
        )
    assert_error_shape(response, 413, "payload_too_large")
    assert logs(settings) == []


def test_promotion_reaches_the_gateway_and_evicts_the_old_session(
    settings: Settings, digits_model: DigitsModel, live_server: Server
) -> None:
    register_digits(settings, digits_model)
    register_digits(settings, digits_model, stage=Stage.STAGING)
    with live_server(settings) as server, server.client() as client:
        predictor = server.app.state.predictor  # type: ignore[attr-defined]
        assert client.post(PREDICT, json={"image": b64(png(1))}).json()["model"]["version"] == 1
        staged = client.post(PREDICT + "?stage=staging", json={"image": b64(png(1))}).json()
        assert staged["model"] == {**staged["model"], "version": 2, "stage": "staging"}
        pinned = client.post(PREDICT + "?version=2", json={"image": b64(png(1))})
        assert pinned.json()["model"]["version"] == 2
        engine = make_engine(settings.resolved_database_url)
        with transaction(session_factory(engine)) as s:
            registry.set_stage(s, "digits", 2, Stage.PRODUCTION)
        engine.dispose()
        deadline = time.monotonic() + 10
        version = 1
        while version != 2 and time.monotonic() < deadline:
            time.sleep(0.1)
            version = client.post(PREDICT, json={"image": b64(png(1))}).json()["model"]["version"]
        assert version == 2
        assert predictor.sessions.get(1) is None  # archived v1 evicted
        r = client.post(PREDICT + "?version=1", json={"image": b64(png(1))})
        assert_error_shape(r, 404, "version_not_found")


def test_health_ready_and_metrics(
    settings: Settings, digits_model: DigitsModel, live_server: Server
) -> None:
    register_digits(settings, digits_model)
    with live_server(settings) as server, server.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready", "models": ["digits"]}
        client.post(PREDICT, json={"image": b64(png(2))})
        client.post(PREDICT, json={"image": b64(b"not an image")})
        text = client.get("/metrics").text
        missing = client.get("/nope")
    assert 'paramstack_predict_requests_total{model="digits",status="ok",version="1"} 1.0' in text
    assert (
        'paramstack_predict_requests_total{model="digits",status="error",version="1"} 1.0' in text
    )
    assert "paramstack_predict_latency_seconds_bucket" in text
    assert_error_shape(missing, 404)


@pytest.mark.filterwarnings("ignore:Column .prediction_feedback.request_id.")
def test_log_writer_isolates_rows_the_database_refuses(engine: Engine) -> None:
    """Bad rows are dropped and counted one by one; the rest of their batch lands."""
    writer = LogWriter(session_factory(engine), interval_s=0.05)
    writer.start()
    rows: list[dict[str, object]] = [{"request_id": f"r{i}", "label": "7"} for i in range(4)]
    rows.append({"request_id": "r1", "label": "8"})  # same key: merged, the newer label wins
    rows.append({"request_id": None, "label": "no key"})  # NOT NULL violation everywhere
    bad = 1
    if engine.dialect.name == "postgresql":
        rows.append({"request_id": "nul", "label": "a\x00b"})  # PostgreSQL refuses NUL in text
        bad += 1
    for row in rows:
        writer.submit(PredictionFeedback, row)
    writer.close()
    with session_factory(engine)() as s:
        query = select(PredictionFeedback.request_id, PredictionFeedback.label)
        stored = {key: label for key, label in s.execute(query).all()}
    assert writer.dropped == bad
    assert stored == {"r0": "7", "r1": "8", "r2": "7", "r3": "7"}
