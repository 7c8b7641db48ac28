"""Several uvicorn workers: /metrics reports the whole server and every worker's logs land."""

from __future__ import annotations

import base64
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import func, select

from paramstack.config import Settings
from paramstack.store.engine import make_engine, session_factory
from paramstack.store.tables import InferenceLog
from paramstack.vision.digits import digit_images, digit_png_bytes
from tests.conftest import DigitsModel, free_port, register_digits
from tests.test_sigterm_logs import server_env, wait_ready

REQUESTS = 40


def test_two_workers_share_metrics_and_flush_logs(
    settings: Settings, digits_model: DigitsModel, tmp_path: Path
) -> None:
    register_digits(settings, digits_model)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = server_env(settings, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "paramstack", "serve", "--port", str(port), "--workers", "2",
         "--no-migrate", "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    images, _ = digit_images()
    try:
        wait_ready(proc, url)
        for i in range(REQUESTS):
            # a new connection each time, so the kernel spreads requests over both workers
            body = {"image": base64.b64encode(digit_png_bytes(images[i])).decode()}
            response = httpx.post(f"{url}/v1/models/digits/predict", json=body, timeout=30)
            assert response.status_code == 200
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    series = 'paramstack_predict_requests_total{model="digits",status="ok",version="1"}'
    assert f"{series} {REQUESTS:.1f}" in metrics
    assert code == 0
    engine = make_engine(settings.resolved_database_url)
    with session_factory(engine)() as s:
        assert s.scalar(select(func.count()).select_from(InferenceLog)) == REQUESTS
    engine.dispose()
