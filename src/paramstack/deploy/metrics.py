"""Metric names the gateway really exports, and the metric names a PromQL expression uses.

Dashboards and alert rules must only query series the gateway exports; both sides are read
from the source of truth (a running app's ``/metrics`` and the parsed PromQL), so a renamed
metric fails the deploy check instead of leaving an empty panel or a silent alert.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import promql_parser
from prometheus_client.parser import text_string_to_metric_families

# Series a family of each type exposes (prometheus_client naming).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}


def series_names(exposition: str) -> set[str]:
    """Every series name the text exposition declares, with or without samples yet."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def gateway_series(home: Path | None = None) -> set[str]:
    """Start the real app (lifespan included) in a temp home and read its ``/metrics``."""
    from fastapi.testclient import TestClient

    from paramstack.config import Settings
    from paramstack.gateway.app import create_app
    from paramstack.store import migrate

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Settings(home=home or Path(tmp), attest=False)
        migrate.upgrade_url(cfg.resolved_database_url)
        with TestClient(create_app(cfg)) as client:
            response = client.get("/metrics")
        response.raise_for_status()
        return series_names(response.text)


def promql_metrics(expr: str) -> set[str]:
    """Metric names of every vector selector; raises ``ValueError`` on invalid PromQL."""
    names: set[str] = set()

    def visit(node: object) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for m in node.matchers.matchers:
                if m.name == "__name__":
                    names.add(m.value)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def unknown_metrics(exprs: dict[str, str], exported: set[str]) -> list[str]:
    """Problems for each expression that fails to parse or reads a series nobody exports."""
    problems: list[str] = []
    for where, expr in exprs.items():
        try:
            used = promql_metrics(expr)
        except ValueError as exc:
            problems.append(f"{where}: invalid PromQL ({exc}): {expr}")
            continue
        problems.extend(
            f"{where}: metric {name!r} is not exported by the gateway"
            for name in sorted(used - exported)
        )
    return problems
