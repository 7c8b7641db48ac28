"""``paramstack deploy check``: every deployment artefact validated offline, in one command.

Each step is one validator over one artefact of the repository; a failing step names the file
and the problem. The metric names come from a real app's ``/metrics``, so dashboards and
alerts cannot drift from the code; the committed dashboard must equal its generator's output.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.progress import Progress

from paramstack.deploy import dashboard, validators
from paramstack.deploy.metrics import gateway_series


@dataclass(frozen=True)
class Layout:
    """Where the artefacts live, relative to the repository root."""

    root: Path

    @property
    def deploy(self) -> Path:
        return self.root / "deploy"

    @property
    def chart(self) -> Path:
        return self.deploy / "helm" / "paramstack"

    @property
    def alerts(self) -> Path:
        return self.chart / "files" / "alerts.yml"

    @property
    def dashboard(self) -> Path:
        return self.chart / "files" / "dashboard.json"

    @property
    def crds(self) -> Path:
        default = self.root.parent / "shared" / "schemas" / "crds"
        return Path(os.environ.get("PARAMSTACK_CRD_SCHEMAS", default))


def chart_value_sets(chart: Path) -> dict[str, dict[str, object] | None]:
    """The defaults plus every ``ci/*-values.yaml`` (the chart-testing convention)."""
    sets: dict[str, dict[str, object] | None] = {"defaults": None}
    for path in sorted((chart / "ci").glob("*-values.yaml")):
        sets[path.name] = yaml.safe_load(path.read_text())
    return sets


def steps(lay: Layout) -> dict[str, Callable[[], list[str]]]:
    exported: set[str] = set()

    def metrics() -> list[str]:
        exported.update(gateway_series())
        return [] if exported else ["the gateway's /metrics declared no series"]

    def helm() -> list[str]:
        problems: list[str] = []
        for label, values in chart_value_sets(lay.chart).items():
            found, docs = validators.helm(lay.chart, values)
            found += validators.kubernetes(docs, lay.crds)
            problems += [f"[{label}] {p}" for p in found]
        return problems

    def grafana() -> list[str]:
        committed = json.loads(lay.dashboard.read_text())
        stale = committed != dashboard.build_dashboard()
        problems = ["dashboard.json differs from the generator: run `paramstack deploy dashboard`"]
        return (problems if stale else []) + dashboard.check_dashboard(committed, exported)

    return {
        "gateway /metrics": metrics,
        "compose config": lambda: validators.compose(
            lay.deploy / "compose" / "compose.yaml", lay.deploy / "compose" / ".env.example"
        ),
        "helm lint + schema + render, kubernetes + CRD schemas": helm,
        "promtool check + test rules": lambda: validators.promtool(
            lay.alerts, lay.deploy / "prometheus" / "alerts.test.yml"
        ),
        "amtool check-config": lambda: validators.alertmanager(
            lay.deploy / "alertmanager" / "alertmanager.yml"
        ),
        "alert metrics exported": lambda: validators.rule_metrics(lay.alerts, exported),
        "grafana dashboard": grafana,
        "actionlint + shellcheck": lambda: validators.actionlint(
            lay.root / ".github" / "workflows"
        ),
        "hadolint": lambda: validators.hadolint(
            sorted((lay.deploy / "docker").glob("*Dockerfile"))
        ),
        "shellcheck deploy scripts": lambda: validators.shellcheck(
            sorted((lay.deploy / "scripts").glob("*.sh"))
        ),
        "yamllint": lambda: validators.yamllint(
            lay.root, [lay.deploy, lay.root / ".github"], lay.deploy / "yamllint.yaml"
        ),
    }


def run_checks(root: Path) -> dict[str, list[str]]:
    """Run every step (even after a failure, so one run lists every problem)."""
    results: dict[str, list[str]] = {}
    todo = steps(Layout(root))
    with Progress(transient=True) as progress:
        task = progress.add_task("deploy check", total=len(todo))
        for name, step in todo.items():
            progress.update(task, description=name)
            try:
                results[name] = step()
            except Exception as exc:  # a crashed validator is a failed check, with its reason
                results[name] = [f"{type(exc).__name__}: {exc}"]
            progress.advance(task)
    return results
