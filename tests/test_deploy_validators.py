"""Each offline validator accepts the committed artefact and rejects it with one typical error
planted in a copy: the deploy check can fail, and fails for the right reason."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from paramstack.deploy import dashboard, validators
from paramstack.deploy.check import Layout
from paramstack.deploy.metrics import gateway_series, promql_metrics

ROOT = Path(__file__).parents[1]
LAY = Layout(ROOT)
FULL_VALUES = yaml.safe_load((LAY.chart / "ci" / "full-values.yaml").read_text())


@pytest.fixture(scope="module")
def exported() -> set[str]:
    return gateway_series()


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    problems, docs = validators.helm(LAY.chart, FULL_VALUES)
    assert problems == []
    return docs


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [doc] = [d for d in docs if d["kind"] == kind]
    return doc


def test_compose_rejects_a_misspelt_condition(tmp_path: Path) -> None:
    compose_dir = LAY.deploy / "compose"
    env = compose_dir / ".env.example"
    assert validators.compose(compose_dir / "compose.yaml", env) == []
    text = (compose_dir / "compose.yaml").read_text()
    broken = tmp_path / "compose.yaml"
    broken.write_text(text.replace("condition: service_healthy", "condition: service_healty", 1))
    [problem] = validators.compose(broken, env)
    assert "depends_on.postgres.condition" in problem


def test_helm_schema_rejects_a_string_replica_count() -> None:
    problems, docs = validators.helm(LAY.chart, {"replicaCount": "three"})
    assert docs == [] and any("replicaCount" in p for p in problems)
    problems, _ = validators.helm(LAY.chart, {"llm": {"canaryTrafficPercent": 150}})
    assert any("canaryTrafficPercent" in p for p in problems)
    problems, _ = validators.helm(LAY.chart, {"gateway": {"settings": {"API_KEY_PEPPER": "x"}}})
    assert problems, "a secret passed as a plain setting must be refused"


def test_crd_schema_rejects_a_typo_in_canary_traffic_percent(
    rendered: list[dict[str, Any]],
) -> None:
    isvc = only(rendered, "InferenceService")
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert validators.kubernetes([isvc], LAY.crds) == []
    typo = copy.deepcopy(isvc)
    typo["spec"]["predictor"]["canaryTraficPercent"] = typo["spec"]["predictor"].pop(
        "canaryTrafficPercent"
    )
    [problem] = validators.kubernetes([typo], LAY.crds)
    assert "canaryTraficPercent" in problem


def test_core_schema_rejects_a_string_replica_count_and_unknown_fields(
    rendered: list[dict[str, Any]],
) -> None:
    deployment = only(rendered, "Deployment")
    assert validators.kubernetes([deployment], LAY.crds) == []
    string_count = copy.deepcopy(deployment)
    string_count["spec"]["replicas"] = "3"
    [problem] = validators.kubernetes([string_count], LAY.crds)
    assert "spec.replicas" in problem and "'3'" in problem
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/"
    [problem] = validators.kubernetes([typo], LAY.crds)
    assert "paht" in problem


def test_rendered_chart_refers_to_secrets_never_embeds_them(
    rendered: list[dict[str, Any]],
) -> None:
    assert not [d for d in rendered if d["kind"] == "Secret"]
    env = only(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["name"] for e in env} >= {"PARAMSTACK_DATABASE_URL", "PARAMSTACK_API_KEY_PEPPER"}
    assert all("secretKeyRef" in e["valueFrom"] and "value" not in e for e in env)


def test_dashboard_rejects_an_unknown_metric_and_broken_promql(exported: set[str]) -> None:
    board = json.loads(LAY.dashboard.read_text())
    assert board == dashboard.build_dashboard()
    assert dashboard.check_dashboard(board, exported) == []
    unknown = copy.deepcopy(board)
    unknown["panels"][0]["targets"][0]["expr"] = "sum(rate(paramstack_predict_requestz_total[5m]))"
    [problem] = dashboard.check_dashboard(unknown, exported)
    assert "paramstack_predict_requestz_total" in problem
    broken = copy.deepcopy(board)
    broken["panels"][1]["targets"][0]["expr"] = "sum(rate(paramstack_predict_requests_total[5m])"
    [problem] = dashboard.check_dashboard(broken, exported)
    assert "invalid PromQL" in problem
    overlap = copy.deepcopy(board)
    overlap["panels"][3]["gridPos"]["w"] = 20
    assert any("24-column" in p for p in dashboard.check_dashboard(overlap, exported))


def test_every_dashboard_and_alert_metric_is_exported(exported: set[str]) -> None:
    """The positive side of the drift check, on real names: not a vacuous pass."""
    used = set()
    for panel in dashboard.build_dashboard()["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "5m").replace("$__range", "1h")
            used |= promql_metrics(expr)
    assert {"paramstack_llm_cost_total", "paramstack_predict_requests_total"} <= used <= exported
    assert validators.rule_metrics(LAY.alerts, exported) == []


def test_promtool_rejects_broken_promql_and_a_wrong_expectation(tmp_path: Path) -> None:
    tests = LAY.deploy / "prometheus" / "alerts.test.yml"
    assert validators.promtool(LAY.alerts, tests) == []
    rules_dir = tmp_path / "helm" / "paramstack" / "files"
    rules_dir.mkdir(parents=True)
    test_copy = tmp_path / "prometheus" / "alerts.test.yml"
    test_copy.parent.mkdir()
    shutil.copy(tests, test_copy)
    text = LAY.alerts.read_text()

    (rules_dir / "alerts.yml").write_text(text.replace("== 2", "== = 2", 1))
    [problem] = validators.promtool(rules_dir / "alerts.yml", test_copy)
    assert "check" in problem and "UpstreamCircuitOpen" in problem

    # Valid PromQL, wrong threshold: the unit test must notice that the alert no longer fires.
    (rules_dir / "alerts.yml").write_text(text.replace("> 50000", "> 5000000", 1))
    [problem] = validators.promtool(rules_dir / "alerts.yml", test_copy)
    assert "promtool test" in problem and "InferenceLogBacklog" in problem


def test_alert_metric_check_rejects_an_unknown_metric(tmp_path: Path, exported: set[str]) -> None:
    rules = tmp_path / "alerts.yml"
    rules.write_text(LAY.alerts.read_text().replace("paramstack_llm_circuit_state", "llm_circuit"))
    [problem] = validators.rule_metrics(rules, exported)
    assert "UpstreamCircuitOpen" in problem and "llm_circuit" in problem


def test_actionlint_rejects_needs_to_a_missing_job(tmp_path: Path) -> None:
    workflows = ROOT / ".github" / "workflows"
    assert validators.actionlint(workflows) == []
    copy_dir = tmp_path / "workflows"
    shutil.copytree(workflows, copy_dir)
    ci = copy_dir / "ci.yml"
    ci.write_text(ci.read_text().replace("needs: quality", "needs: qualty", 1))
    [problem] = validators.actionlint(copy_dir)
    assert "qualty" in problem


def test_actionlint_runs_shellcheck_on_run_blocks(tmp_path: Path) -> None:
    wf = tmp_path / "wf.yml"
    wf.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo $UNQUOTED_VAR\n"
    )
    [problem] = validators.actionlint(tmp_path)
    assert "shellcheck" in problem and "SC2086" in problem


def test_hadolint_rejects_an_unpinned_latest_base(tmp_path: Path) -> None:
    dockerfile = LAY.deploy / "docker" / "gateway.Dockerfile"
    assert validators.hadolint([dockerfile]) == []
    bad = tmp_path / "Dockerfile"
    text = dockerfile.read_text().replace("ARG PYTHON_IMAGE=python:3.11-slim", "", 1)
    bad.write_text(text.replace("FROM ${PYTHON_IMAGE} AS build", "FROM python:latest AS build"))
    [problem] = validators.hadolint([bad])
    assert "DL3007" in problem


def test_yamllint_rejects_a_duplicate_key(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    bad = tmp_path / "deploy" / "values.yaml"
    bad.write_text("replicaCount: 2\nimage:\n  tag: a\nreplicaCount: 3\n")
    [problem] = validators.yamllint(tmp_path, [bad], LAY.deploy / "yamllint.yaml")
    assert "duplication" in problem


def test_amtool_rejects_a_route_to_a_missing_receiver(tmp_path: Path) -> None:
    config = LAY.deploy / "alertmanager" / "alertmanager.yml"
    assert validators.alertmanager(config) == []
    bad = tmp_path / "alertmanager.yml"
    bad.write_text(config.read_text().replace("receiver: paramstack-rollback", "receiver: rollbak"))
    [problem] = validators.alertmanager(bad)
    assert "rollbak" in problem


def test_deploy_check_command_fails_on_one_planted_error_and_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole `paramstack deploy check` on a copy of the tree: a stale dashboard and a broken
    compose file fail it (exit 1); every other step stays green."""
    from typer.testing import CliRunner

    from paramstack.cli.app import app

    for part in ("deploy", ".github"):
        shutil.copytree(ROOT / part, tmp_path / part)
    monkeypatch.setenv("PARAMSTACK_CRD_SCHEMAS", str(LAY.crds))
    compose = tmp_path / "deploy" / "compose" / "compose.yaml"
    compose.write_text(compose.read_text().replace("condition: service_healthy", "condition: up"))
    board = tmp_path / "deploy" / "helm" / "paramstack" / "files" / "dashboard.json"
    board.write_text(board.read_text().replace('"refresh": "30s"', '"refresh": "5s"'))

    result = CliRunner().invoke(app, ["deploy", "check", "--root", str(tmp_path)])
    assert result.exit_code == 1
    failed = [line for line in result.output.splitlines() if "problem(s)" in line]
    assert [line.split("  ", 1)[1] for line in failed] == ["compose config", "grafana dashboard"]
    assert "differs from the generator" in result.output
