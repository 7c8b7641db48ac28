"""The Grafana dashboard, generated from Python so every query lives next to its check.

No Grafana server can run here, so ``check_dashboard`` does what Grafana would reject or
silently show empty: a broken panel layout, a missing datasource, PromQL that does not parse,
and metrics the gateway does not export. ``deploy/grafana/paramstack.json`` is this output;
the deploy check fails when the committed file and the generator disagree.
"""

from __future__ import annotations

import json
from typing import Any

from paramstack.deploy.metrics import unknown_metrics

UID = "paramstack-gateway"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
P = "paramstack_"

# (title, unit, {legend: PromQL}); canary vs stable is the per-version split of one model.
PANELS: list[tuple[str, str, dict[str, str]]] = [
    ("Predict traffic by model", "reqps", {
        "{{model}} v{{version}} {{status}}":
            f"sum by (model, version, status) (rate({P}predict_requests_total[$__rate_interval]))",
    }),
    ("Predict latency p50 / p95 / p99", "s", {
        f"p{q}": f"histogram_quantile(0.{q}, sum by (le) (rate("
        f'{P}predict_latency_seconds_bucket{{phase="total"}}[$__rate_interval])))'
        for q in ("50", "95", "99")
    }),
    ("Canary vs stable (per version) error ratio", "percentunit", {
        "{{model}} v{{version}}": f'sum by (model, version) (rate({P}predict_requests_total'
        f'{{status="error"}}[$__rate_interval])) / sum by (model, version) '
        f"(rate({P}predict_requests_total[$__rate_interval]))",
    }),
    ("LLM canary vs stable: requests and 5xx ratio per arm", "short", {
        "{{split}} {{arm}} req/s":
            f"sum by (split, arm) (rate({P}traffic_requests_total[$__rate_interval]))",
        "{{split}} {{arm}} 5xx ratio": f"sum by (split, arm) (rate({P}traffic_errors_total"
        f"[$__rate_interval])) / sum by (split, arm) (rate({P}traffic_requests_total"
        "[$__rate_interval]))",
        "{{split}} candidate %": f"max by (split) ({P}traffic_candidate_percent)",
    }),
    ("LLM traffic by model and status", "reqps", {
        "{{model}} {{status}}":
            f"sum by (model, status) (rate({P}llm_requests_total[$__rate_interval]))",
    }),
    ("LLM latency p50 / p95 / p99", "s", {
        f"p{q}": f"histogram_quantile(0.{q}, sum by (le, model) "
        f"(rate({P}llm_latency_seconds_bucket[$__rate_interval])))"
        for q in ("50", "95", "99")
    }),
    ("Errors by status and code", "reqps", {
        "{{status}} {{code}}":
            f"sum by (status, code) (rate({P}http_errors_total[$__rate_interval]))",
    }),
    ("Tokens per model (in/out)", "short", {
        "{{model}} {{direction}}":
            f"sum by (model, direction) (increase({P}llm_tokens_total[$__range]))",
    }),
    ("Cost per tenant", "currencyUSD", {
        "{{tenant}} {{currency}}":
            f"sum by (tenant, currency) (increase({P}llm_cost_total[$__range]))",
    }),
    ("Limiter rejections (rate vs quota)", "reqps", {
        "{{model}} {{reason}}": f"sum by (model, reason) "
        f"(rate({P}llm_limiter_rejections_total[$__rate_interval]))",
    }),
    ("Upstream circuit state (2 = open) and retries", "short", {
        "state {{model}}": f"max by (model) ({P}llm_circuit_state)",
        "retries {{model}}": f"sum by (model) (rate({P}llm_upstream_retries_total[5m]))",
    }),
    ("Guard blocks", "reqps", {
        "blocked": f'sum(rate({P}http_errors_total{{code="guard_blocked"}}[$__rate_interval]))',
    }),
    ("ECG and classifier predictions", "reqps", {
        "ECG beats": f'sum(rate({P}predict_requests_total{{model="ecg-beats"}}'
        "[$__rate_interval]))",
        "classifiers": f'sum(rate({P}predict_requests_total{{model!="ecg-beats"}}'
        "[$__rate_interval]))",
    }),
    ("Result cache hit ratio", "percentunit", {
        "hits": f'sum(rate({P}result_cache_total{{result="hit"}}[$__rate_interval])) / '
        f"sum(rate({P}result_cache_total[$__rate_interval]))",
    }),
    ("Inference-log backlog and loaded sessions", "short", {
        "pending log rows": f"sum({P}inference_logs_pending)",
        "sessions": f"sum({P}model_sessions_loaded)",
    }),
    ("Router fallback ratio", "percentunit", {
        "{{router}}": f"sum by (router) (rate({P}llm_route_fallbacks_total[$__rate_interval])) "
        f"/ sum by (router) (rate({P}llm_route_decisions_total[$__rate_interval]))",
    }),
    ("Log-writer queue by kind and dropped rows", "short", {
        "queued {{kind}}": f"sum by (kind) ({P}log_writer_pending)",
        "dropped {{kind}} {{reason}}": f"sum by (kind, reason) "
        f"(increase({P}log_writer_dropped_rows_total[$__rate_interval]))",
    }),
    ("Audit checkpoint lag", "short", {
        "seconds since checkpoint": f"max({P}audit_checkpoint_age_seconds)",
        "entries since checkpoint": f"max({P}audit_entries_since_checkpoint)",
    }),
]  # fmt: skip


def _panel(pid: int, title: str, unit: str, queries: dict[str, str]) -> dict[str, Any]:
    return {
        "id": pid,
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": 12 * ((pid - 1) % 2), "y": 8 * ((pid - 1) // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": lg}
            for i, (lg, expr) in enumerate(queries.items())
        ],
    }


def build_dashboard() -> dict[str, Any]:
    return {
        "uid": UID,
        "title": "paramstack gateway",
        "tags": ["paramstack"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]
        },
        "panels": [_panel(i, *spec) for i, spec in enumerate(PANELS, start=1)],
    }


def render() -> str:
    return json.dumps(build_dashboard(), indent=2) + "\n"


def check_dashboard(dashboard: dict[str, Any], exported: set[str]) -> list[str]:
    """Structural problems plus every query that fails to parse or reads an unknown metric."""
    problems = [
        f"missing top-level {k!r}" for k in ("uid", "title", "panels") if k not in dashboard
    ]
    exprs: dict[str, str] = {}
    ids: set[int] = set()
    for n, panel in enumerate(dashboard.get("panels", [])):
        where = f"panel {panel.get('title', n)!r}"
        if panel.get("id") in ids:
            problems.append(f"{where}: duplicate id {panel.get('id')}")
        ids.add(panel.get("id"))
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")):
            problems.append(f"{where}: gridPos needs integer h, w, x, y")
        elif grid["x"] + grid["w"] > 24:
            problems.append(f"{where}: wider than the 24-column grid")
        if (panel.get("datasource") or {}).get("type") != "prometheus":
            problems.append(f"{where}: datasource is not Prometheus")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no queries")
        for t in targets:
            expr = t.get("expr")
            if not isinstance(expr, str) or not expr:
                problems.append(f"{where}: target {t.get('refId')} has no expr")
                continue
            # Grafana's interval variables are not PromQL; Grafana substitutes them first.
            exprs[f"{where} {t.get('refId')}"] = expr.replace("$__rate_interval", "5m").replace(
                "$__range", "1h"
            )
    return problems + unknown_metrics(exprs, exported)
