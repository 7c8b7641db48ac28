"""What the rendered Helm chart promises operators: safe rolling updates, probes on the real
health routes, disruption and scaling bounds, locked-down networking, and alert rules that are
the promtool-tested file itself (no second copy to drift)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from paramstack.deploy import validators

CHART = Path(__file__).parents[1] / "deploy" / "helm" / "paramstack"


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    problems, rendered = validators.helm(CHART)
    assert problems == []
    return {d["kind"]: d for d in rendered if d["kind"] != "ConfigMap"} | {
        d["metadata"]["name"]: d for d in rendered if d["kind"] == "ConfigMap"
    }


def test_gateway_rolls_out_without_losing_capacity_and_probes_health(
    docs: dict[str, dict[str, Any]],
) -> None:
    spec = docs["Deployment"]["spec"]
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert "replicas" not in spec  # the HPA owns the count when autoscaling is on
    pod = spec["template"]["spec"]
    [gateway] = pod["containers"]
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["resources"]["requests"] and gateway["resources"]["limits"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert gateway["securityContext"]["readOnlyRootFilesystem"] is True
    hpa = docs["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
    assert docs["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    selector = docs["Service"]["spec"]["selector"]
    assert docs["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"] == selector


def test_settings_come_from_the_config_map_and_secrets_by_reference(
    docs: dict[str, dict[str, Any]],
) -> None:
    config = docs["paramstack"]["data"]
    assert config["PARAMSTACK_LIMITER_BACKEND"] == "redis"
    assert config["PARAMSTACK_HOST"] == "0.0.0.0" and config["PARAMSTACK_PORT"] == "8000"
    env = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in env} == {"paramstack-secrets"}


def test_prometheus_rule_and_dashboard_are_the_checked_files(
    docs: dict[str, dict[str, Any]],
) -> None:
    rules = yaml.safe_load((CHART / "files" / "alerts.yml").read_text())
    assert docs["PrometheusRule"]["spec"]["groups"] == rules["groups"]
    board = docs["paramstack-dashboard"]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert (
        board["data"]["paramstack.json"] == (CHART / "files" / "dashboard.json").read_text().strip()
    )
    assert "InferenceService" not in docs  # the LLM on KServe is opt-in


def test_disabling_autoscaling_pins_the_replica_count() -> None:
    problems, rendered = validators.helm(
        CHART, {"autoscaling": {"enabled": False}, "replicaCount": 4}
    )
    assert problems == []
    kinds = {d["kind"]: d for d in rendered}
    assert "HorizontalPodAutoscaler" not in kinds
    assert kinds["Deployment"]["spec"]["replicas"] == 4
