"""Schemathesis against a live gateway with a production digits model.

Invariants: no 5xx for any generated request, every 4xx body in our documented error shape
``{"error": {"message", "type", "code", "param"}}``, and responses that conform to the OpenAPI
schema (schemathesis' default checks, minus the few documented below as known schema gaps).
Random bytes never decode as an image, so the success path is covered by explicit cases built
from real digit PNGs, validated by the same checks.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import select

from paramstack.config import Settings
from paramstack.gateway.app import create_app
from paramstack.store import migrate
from paramstack.store.engine import make_engine, session_factory
from paramstack.store.tables import InferenceLog
from paramstack.vision.digits import digit_images, digit_png_bytes, digit_tensors
from tests.conftest import DigitsModel, LiveServer, register_digits, run_server

SEED = 20_250_601
MAX_EXAMPLES = 100
PREDICT = "/v1/models/{name}/predict"

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "phases": {"stateful": {"enabled": False}},
        "request-timeout": 30,
    }
)


def fuzz_settings(max_examples: int) -> Any:
    """Hypothesis settings shared by the schemathesis suites: reproducible, no deadline."""
    return hypothesis_settings(
        max_examples=max_examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


# A gap between the app and its schema, kept out of the default checks: a JSON schema cannot
# say "a decodable image", so schema-valid random strings in `image` get a correct 400.
KNOWN_GAPS: dict[tuple[str, str], list[Any]] = {
    ("POST", PREDICT): [positive_data_acceptance],
}

# The schema the app serves at /openapi.json, built without starting it (no lifespan, no
# database); test_served_schema_is_the_fuzzed_one checks the live server serves the same.
# (schemathesis.pytest.from_fixture would load it from the live server, but 4.32.5's lazy
# loader reads `Function._nodeid`, which pytest 9 no longer has.)
OPENAPI = create_app(Settings(home=Path("unused"))).openapi()
# The admin routes answer 401 to everything here: tests/test_admin_fuzz.py fuzzes them with a token.
schema = schemathesis.openapi.from_dict(OPENAPI, config=CONFIG).exclude(path_regex=r"^/v1/admin/")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    cfg = Settings(
        home=tmp_path_factory.mktemp("fuzz") / "home",
        registry_refresh_s=0.5,
        log_flush_interval_s=0.05,
    )
    migrate.upgrade_url(cfg.resolved_database_url)
    return cfg


@pytest.fixture(scope="module")
def fuzz_server(home: Settings, digits_model: DigitsModel) -> Iterator[LiveServer]:
    register_digits(home, digits_model)
    with run_server(home) as live:
        yield live


def assert_error_shape(response: schemathesis.Response | httpx.Response) -> dict[str, Any]:
    media_type = response.headers.get("content-type", "")
    if isinstance(media_type, list):  # schemathesis.Response keeps every value of a header
        media_type = media_type[0]
    assert media_type.startswith("application/json"), media_type
    body = response.json()
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict), body
    assert set(error) == {"message", "type", "code", "param"}, body
    assert isinstance(error["message"], str), body
    assert error["message"], body
    assert isinstance(error["type"], str), body
    assert error["code"] is None or isinstance(error["code"], str), body
    assert error["param"] is None or isinstance(error["param"], str), body
    return error


def check_response(case: schemathesis.Case, response: schemathesis.Response) -> None:
    assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
    if 400 <= response.status_code < 500:
        assert_error_shape(response)
    excluded = KNOWN_GAPS.get((case.operation.method.upper(), case.operation.path), [])
    case.validate_response(response, excluded_checks=excluded)


@schema.parametrize()
@fuzz_settings(MAX_EXAMPLES)
def test_openapi_fuzz(case: schemathesis.Case, fuzz_server: LiveServer) -> None:
    check_response(case, case.call(base_url=fuzz_server.url))


def test_served_schema_is_the_fuzzed_one(fuzz_server: LiveServer) -> None:
    with fuzz_server.client(trust_env=False) as client:
        assert client.get("/openapi.json").json() == OPENAPI
        metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")  # see KNOWN_GAPS


@pytest.fixture(scope="module")
def digit_samples(digits_model: DigitsModel) -> tuple[list[bytes], list[list[Any]]]:
    images, _labels = digit_images()
    side = int(digits_model.meta["input_shape"][2])  # type: ignore[index]
    tensors = digit_tensors(images[:3], (side, side))
    return [digit_png_bytes(img) for img in images[:3]], [t[None].tolist() for t in tensors]


def success_cases(pngs: list[bytes], tensors: list[list[Any]]) -> list[dict[str, Any]]:
    b64 = base64.b64encode(pngs[0]).decode()
    json_case = {"media_type": "application/json", "path_parameters": {"name": "digits"}}
    return [
        {**json_case, "body": {"image": b64}},
        {**json_case, "body": {"image": f"data:image/png;base64,{b64}", "user": "u-1"}},
        {**json_case, "body": {"image": b64}, "query": {"version": 1}},
        {**json_case, "body": {"image": b64}, "query": {"stage": "production"}},
        {**json_case, "body": {"inputs": tensors[1]}},
        {
            "media_type": "multipart/form-data",
            "path_parameters": {"name": "digits"},
            "body": {"file": pngs[2], "user": "u-2"},
        },
    ]


def test_predict_success_conforms(
    fuzz_server: LiveServer, digit_samples: tuple[list[bytes], list[list[Any]]]
) -> None:
    operation = schema[PREDICT]["POST"]
    for kwargs in success_cases(*digit_samples):
        case = operation.Case(**kwargs)
        response = case.call(base_url=fuzz_server.url)
        assert response.status_code == 200, (kwargs.get("query"), response.text[:500])
        check_response(case, response)
        body = response.json()
        assert body["model"]["name"] == "digits"
        assert response.headers["x-request-id"] == [body["metadata"]["request_id"]]
        assert abs(sum(body["probabilities"].values()) - 1.0) < 1e-6


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"path_parameters": {"name": "nope"}}, 404, "model_not_found"),
        ({"query": {"version": 99}}, 404, "version_not_found"),
        ({"query": {"stage": "staging"}}, 404, "version_not_found"),
        ({"query": {"stage": "bogus"}}, 400, "invalid_input"),
        ({"query": {"version": 0}}, 400, "invalid_input"),
        ({"body": {}}, 400, "invalid_input"),
        ({"body": {"image": None, "inputs": None}}, 400, "invalid_input"),
        ({"body": {"image": "not base64!"}}, 400, "invalid_input"),
        ({"body": {"image": base64.b64encode(b"hello").decode()}}, 400, "invalid_input"),
        ({"body": {"inputs": [[1.0, 2.0]]}}, 400, "wrong_shape"),
        ({"body": {"inputs": [[1.0], [2.0, 3.0]]}}, 400, "invalid_input"),
        ({"body": {"inputs": [1e39]}}, 400, "invalid_input"),
        ({"body": {"image": "aGVsbG8=", "user": "u" * 129}}, 400, "invalid_input"),
    ],
)
def test_predict_errors_conform(
    fuzz_server: LiveServer,
    digit_samples: tuple[list[bytes], list[list[Any]]],
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    b64 = base64.b64encode(digit_samples[0][0]).decode()
    full = {
        "media_type": "application/json",
        "path_parameters": {"name": "digits"},
        "body": {"image": b64},
        **kwargs,
    }
    case = schema[PREDICT]["POST"].Case(**full)
    response = case.call(base_url=fuzz_server.url)
    assert response.status_code == status, response.text[:500]
    assert assert_error_shape(response)["code"] == code
    check_response(case, response)


def test_raw_http_errors_conform(home: Settings, fuzz_server: LiveServer) -> None:
    """What schemathesis cannot send from this schema: bad media types and oversized bodies."""
    url = "/v1/models/digits/predict"
    limit = home.max_body_bytes
    json_type = {"content-type": "application/json"}
    chunked = iter([b"x" * (limit // 2)] * 3)  # no Content-Length: refused while streaming
    with fuzz_server.client(trust_env=False) as client:
        cases = [
            (client.post(url, content=b"x", headers={"content-type": "text/plain"}), 415),
            (client.post(url, content=b"{}", headers={"content-type": ""}), 415),
            (client.post(url, files={"file": ("a.txt", b"hi", "text/plain")}), 415),
            (client.post(url, files={"user": (None, "u")}), 400),
            (client.post(url, content=b"{not json", headers=json_type), 400),
            (client.post(url, content=b"x" * (limit + 1), headers=json_type), 413),
            (client.post(url, content=chunked, headers=json_type), 413),
            (client.put(url, json={}), 405),
            (client.get("/no/such/path"), 404),
        ]
        for response, status in cases:
            assert response.status_code == status, (response.request.url, response.text[:300])
            assert_error_shape(response)
        assert cases[-2][0].headers["allow"] == "POST"


def test_gateway_healthy_after_fuzzing(home: Settings, fuzz_server: LiveServer) -> None:
    """Nothing the fuzzer sent broke the log writer: a new prediction still reaches the table."""
    logs = fuzz_server.app.state.predictor.logs  # type: ignore[attr-defined]
    request_id = f"after-fuzz-{uuid.uuid4().hex}"
    png = digit_png_bytes(digit_images()[0][5])
    with fuzz_server.client(trust_env=False) as client:
        response = client.post(
            "/v1/models/digits/predict",
            files={"file": ("d.png", png, "image/png")},
            headers={"x-request-id": request_id},
        )
        assert response.status_code == 200, response.text
        assert client.get("/readyz").status_code == 200
    engine = make_engine(home.resolved_database_url)
    try:
        deadline = time.monotonic() + 15
        while True:
            with session_factory(engine)() as session:
                found = session.scalars(
                    select(InferenceLog.status).where(InferenceLog.request_id == request_id)
                ).all()
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        engine.dispose()
    assert found == ["ok"]
    assert logs.dropped == 0


def test_predict_overflowing_tensor_is_rejected_or_finite(
    fuzz_server: LiveServer, digits_model: DigitsModel
) -> None:
    side = int(digits_model.meta["input_shape"][2])  # type: ignore[index]
    tensor = np.full((1, 3, side, side), 3e38, dtype=np.float32).tolist()
    case = schema[PREDICT]["POST"].Case(
        media_type="application/json",
        path_parameters={"name": "digits"},
        body={"inputs": tensor},
    )
    response = case.call(base_url=fuzz_server.url)
    check_response(case, response)
    assert response.status_code == 400
    assert assert_error_shape(response)["code"] == "non_finite_output"
