"""``paramstack metrics``: daily roll-ups of the inference logs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from paramstack.cli.context import console, fmt_float, print_json, registry_session
from paramstack.registry.daily_metrics import aggregate_day
from paramstack.store.tables import ModelVersion

app = typer.Typer(help="Serving metrics.", no_args_is_help=True)


@app.command()
def daily(
    day: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="UTC day; default today.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Aggregate one day of logs per model version (re-running replaces that day's rows)."""
    target: date = (day or datetime.now(UTC)).date()
    with registry_session() as session:
        metrics = aggregate_day(session, target)
        names = {
            v.id: (v.model.name, v.version) for v in session.scalars(select(ModelVersion)).all()
        }
        rows: list[dict[str, Any]] = [
            {
                "day": m.day.isoformat(),
                "model": names[m.model_version_id][0],
                "version": names[m.model_version_id][1],
                "total_requests": m.total_requests,
                "successful_requests": m.successful_requests,
                "cache_hits": m.cache_hits,
                "mean_latency_ms": m.mean_latency_ms,
                "p95_latency_ms": m.p95_latency_ms,
                "p99_latency_ms": m.p99_latency_ms,
                "mean_confidence": m.mean_confidence,
                "labelled_requests": m.labelled_requests,
                "accuracy": m.accuracy,
            }
            for m in metrics
        ]
    if as_json:
        print_json(rows)
        return
    table = Table(
        "model", "v", "total", "ok", "cached", "mean ms", "p95 ms", "p99 ms", "conf", "acc"
    )
    for r in rows:
        table.add_row(
            r["model"], str(r["version"]), str(r["total_requests"]),
            str(r["successful_requests"]), str(r["cache_hits"]),
            *(fmt_float(r[k]) for k in ("mean_latency_ms", "p95_latency_ms", "p99_latency_ms")),
            fmt_float(r["mean_confidence"]), fmt_float(r["accuracy"]),
        )  # fmt: skip
    console.print(f"daily metrics for {target.isoformat()}")
    console.print(table if rows else "no inference logs that day")
