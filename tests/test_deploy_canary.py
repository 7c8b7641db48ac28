"""``paramstack deploy canary``: the official kubernetes client against a real HTTP server that
speaks the InferenceService subset of the Kubernetes API (``tests.fake_kube``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paramstack.cli.app import app
from paramstack.deploy import kserve
from paramstack.errors import InvalidInput, NotFound
from tests.fake_kube import TOKEN, inference_service, run_kube

runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["deploy", "canary", *args])
    return result.exit_code, result.output


def test_promote_then_rollback_patch_only_the_canary_share(tmp_path: Path) -> None:
    with run_kube(
        inference_service("chat", "llm", 10), inference_service("other", "llm", 30)
    ) as kube:
        config = str(kube.kubeconfig(tmp_path / "kubeconfig"))
        where = ["--service", "chat", "--namespace", "llm", "--kubeconfig", config]

        code, out = cli("promote", "--share", "50", *where)
        assert code == 0, out
        assert json.loads(out)["canary_percent"] == 50
        obj = kube.objects[("llm", "chat")]
        assert obj["spec"]["predictor"] == {
            "canaryTrafficPercent": 50,
            "model": {"runtime": "vllm"},
        }

        code, out = cli("rollback", *where)
        assert code == 0, out
        assert json.loads(out)["canary_percent"] == 0
        assert kube.objects[("llm", "chat")]["spec"]["predictor"]["canaryTrafficPercent"] == 0
        assert kube.objects[("llm", "other")]["spec"]["predictor"]["canaryTrafficPercent"] == 30

        code, out = cli("status", "--require-ready", *where)
        assert code == 0, out
        state = json.loads(out)
        assert state["ready"] is True and state["previous_revision"] == "chat-predictor-00001"

    patches = [r for r in kube.requests if r["method"] == "PATCH"]
    assert [p["body"] for p in patches] == [
        {"spec": {"predictor": {"canaryTrafficPercent": 50}}},
        {"spec": {"predictor": {"canaryTrafficPercent": 0}}},
    ]
    assert {r["authorization"] for r in kube.requests} == {f"Bearer {TOKEN}"}
    assert {p["content_type"] for p in patches} == {"application/merge-patch+json"}


def test_missing_service_and_bad_share_are_clear_errors(tmp_path: Path) -> None:
    with run_kube(inference_service("chat", "llm", 10)) as kube:
        config = kube.kubeconfig(tmp_path / "kubeconfig")
        code, out = cli("promote", "--service", "nope", "--namespace", "llm",
                        "--kubeconfig", str(config))  # fmt: skip
        assert code == 1 and "llm/nope not found" in out
        code, out = cli("promote", "--share", "101", "--kubeconfig", str(config))
        assert code == 2 and "less than or equal to 100" in out
        api = kserve.api(config)
        with pytest.raises(NotFound):
            kserve.status(api, "chat", "elsewhere")
        with pytest.raises(InvalidInput):
            kserve.set_canary(api, "chat", "llm", -1)
        assert kube.objects[("llm", "chat")]["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert not [r for r in kube.requests if r["method"] == "PATCH" and "chat" in r["path"]]


def test_status_require_ready_fails_on_a_service_that_is_not_ready(tmp_path: Path) -> None:
    broken = inference_service("chat", "llm", 10)
    broken["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    with run_kube(broken) as kube:
        config = str(kube.kubeconfig(tmp_path / "kubeconfig"))
        code, out = cli("status", "--namespace", "llm", "--kubeconfig", config, "--require-ready")
    assert code == 1 and "not Ready" in out
