"""The CLI as users run it (a subprocess): output, JSON, and exit codes for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from paramstack.config import Settings
from paramstack.store.engine import make_engine, session_factory
from paramstack.store.tables import ModelVersion
from tests.conftest import DigitsModel


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PARAMSTACK_HOME": str(settings.home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "paramstack", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


def versions(settings: Settings) -> int:
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_factory(engine)() as s:
            return int(s.scalar(select(func.count()).select_from(ModelVersion)) or 0)
    finally:
        engine.dispose()


def test_register_promote_show_list_archive(
    settings: Settings, digits_model: DigitsModel, tmp_path: Path
) -> None:
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps(digits_model.meta))
    out = cli(settings, "models", "register", str(digits_model.onnx_path), "--name", "digits",
              "--meta", str(meta), "--domain", "vision", "--lineage", "training_run_id=r1",
              "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["version"] == 1 and info["stage"] == "registered"
    assert info["class_labels"] == [str(i) for i in range(10)]
    assert info["lineage"] == {"training_run_id": "r1"}
    assert info["metrics"]["accuracy"] >= 0.95
    assert cli(settings, "models", "promote", "digits", "1", "--to", "staging").returncode == 0
    promoted = cli(settings, "models", "promote", "digits", "1")
    assert promoted.returncode == 0 and "digits v1 → production" in promoted.stdout
    shown = json.loads(cli(settings, "models", "show", "digits", "--json").stdout)
    assert shown["stage"] == "production"
    listed = cli(settings, "models", "list")
    assert "digits" in listed.stdout and "production" in listed.stdout
    assert cli(settings, "models", "archive", "digits", "1").returncode == 0
    again = cli(settings, "models", "promote", "digits", "1")
    assert again.returncode == 4 and "cannot move a archived version" in again.stderr


def test_bad_input_gives_message_and_exit_code_and_writes_nothing(
    settings: Settings, digits_model: DigitsModel, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(digits_model.onnx_path.read_bytes()[:1000])
    out = cli(settings, "models", "register", str(broken), "--name", "digits")
    assert out.returncode == 2
    assert "not a valid ONNX model" in out.stderr and "Traceback" not in out.stderr
    out = cli(settings, "models", "register", str(digits_model.onnx_path), "--name", "digits",
              "--input-shape", "1,3,28,28")  # fmt: skip
    assert out.returncode == 2 and "declared input shape" in out.stderr
    assert versions(settings) == 0
    missing = cli(settings, "models", "show", "nothing")
    assert missing.returncode == 3 and "not registered" in missing.stderr
    usage = cli(settings, "models", "promote", "digits", "notanumber")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_abtest_and_daily_metrics_commands(settings: Settings, digits_model: DigitsModel) -> None:
    for stage in ("production", "staging"):
        out = cli(settings, "models", "register", str(digits_model.onnx_path), "--name", "digits",
                  "--stage", stage)  # fmt: skip
        assert out.returncode == 0, out.stderr
    created = cli(settings, "abtest", "create", "exp", "--model", "digits", "--a", "1", "--b", "2",
                  "--split", "20")  # fmt: skip
    assert created.returncode == 0, created.stderr
    shown = json.loads(cli(settings, "abtest", "show", "exp", "--json").stdout)
    assert shown["status"] == "running" and shown["split_b_percent"] == 20.0
    assert shown["arms"]["B"]["version"] == 2
    stopped = json.loads(cli(settings, "abtest", "stop", "exp", "--winner", "B", "--json").stdout)
    assert stopped["status"] == "stopped" and stopped["winner"] == "B"
    daily = cli(settings, "metrics", "daily", "--day", "2026-01-01", "--json")
    assert daily.returncode == 0 and json.loads(daily.stdout) == []
    bad_day = cli(settings, "metrics", "daily", "--day", "yesterday")
    assert bad_day.returncode == 2


def test_settings_from_env_and_toml(tmp_path: Path) -> None:
    toml = tmp_path / "paramstack.toml"
    toml.write_text('port = 9100\nresult_cache_size = 7\nhome = "/srv/ps"\n')
    env = {**os.environ, "PARAMSTACK_CONFIG": str(toml), "PARAMSTACK_PORT": "9200"}
    out = subprocess.run([sys.executable, "-m", "paramstack", "config"], capture_output=True,
                         text=True, env=env, timeout=60, check=True)  # fmt: skip
    data = json.loads(out.stdout)
    assert data["port"] == 9200  # the environment wins over the file
    assert data["result_cache_size"] == 7
    assert data["resolved_database_url"] == "sqlite:////srv/ps/paramstack.db"
    bad = subprocess.run([sys.executable, "-m", "paramstack", "config"], capture_output=True,
                         text=True, env={**env, "PARAMSTACK_PORT": "nope"}, timeout=60,
                         check=False)  # fmt: skip
    assert bad.returncode != 0 and "port" in bad.stderr
