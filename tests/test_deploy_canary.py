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


def test_the_registry_split_moves_with_the_service_and_only_when_the_patch_succeeds(
    tmp_path: Path,
) -> None:
    from sqlalchemy import func, select

    from paramstack.config import Settings
    from paramstack.registry import traffic
    from paramstack.store import migrate
    from paramstack.store.audit_tables import AuditEntry
    from paramstack.store.engine import make_engine, session_factory, transaction

    settings = Settings(home=tmp_path / "home")
    engine = make_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    with transaction(session_factory(engine)) as s:
        spec = traffic.SplitSpec(stable="chat-v1", candidate="chat-v2", candidate_percent=10)
        traffic.set_split(s, "chat", spec, actor="test")

    def split() -> tuple[float, str, int]:
        with session_factory(engine)() as s:
            row = traffic.get_split(s, "chat")
            audited = s.scalar(select(func.count()).select_from(AuditEntry)) or 0
            return row.candidate_percent, row.status.value, int(audited)

    env = {"PARAMSTACK_HOME": str(settings.home)}
    with run_kube(inference_service("chat", "llm", 10)) as kube:
        config = str(kube.kubeconfig(tmp_path / "kubeconfig"))
        where = ["--namespace", "llm", "--kubeconfig", config, "--split", "chat"]

        failed = runner.invoke(
            app, ["deploy", "canary", "promote", "--share", "40", "--service", "nope", *where],
            env=env,
        )  # fmt: skip
        assert failed.exit_code == 1
        assert split() == (10.0, "running", 0), "a failed patch records nothing"

        moved = runner.invoke(
            app, ["deploy", "canary", "promote", "--share", "40", "--service", "chat", *where],
            env=env,
        )  # fmt: skip
        assert moved.exit_code == 0, moved.output
        assert json.loads(moved.output)["registry_split"]["candidate_percent"] == 40
        assert split() == (40.0, "running", 1)

        back = runner.invoke(
            app, ["deploy", "canary", "rollback", "--service", "chat", *where], env=env
        )
        assert back.exit_code == 0, back.output
        assert split() == (0.0, "rolled_back", 2)
        assert kube.objects[("llm", "chat")]["spec"]["predictor"]["canaryTrafficPercent"] == 0

        alone = runner.invoke(  # no KServe in this deployment: the registry split alone
            app, ["deploy", "canary", "promote", "--share", "20", "--split", "chat"], env=env
        )
        assert alone.exit_code == 0, alone.output
        assert split() == (20.0, "running", 3)
        assert kube.objects[("llm", "chat")]["spec"]["predictor"]["canaryTrafficPercent"] == 0
        neither = runner.invoke(app, ["deploy", "canary", "rollback"], env=env)
        assert neither.exit_code == 2 and "--service" in neither.output
    engine.dispose()
