"""``paramstack abtest``: split a model's traffic between two versions."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from paramstack.cli.context import console, fmt_float, print_json, registry_session
from paramstack.registry import abtests
from paramstack.store.tables import ABTest

app = typer.Typer(help="A/B tests between two versions of a model.", no_args_is_help=True)


def report(test: ABTest, stats: dict[str, abtests.ArmStats]) -> dict[str, Any]:
    return {
        "name": test.name,
        "model": test.model.name,
        "status": test.status.value,
        "split_b_percent": test.split_b_percent,
        "winner": test.winner,
        "arms": {
            arm: {"version": v.version, **vars(stats[arm])}
            for arm, v in (("A", test.version_a), ("B", test.version_b))
        },
    }


def print_report(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(data)
        return
    console.print(
        f"[bold]{data['name']}[/] on {data['model']}: {data['status']}, "
        f"{data['split_b_percent']}% to B, winner {data['winner'] or '-'}"
    )
    table = Table(
        "arm", "version", "requests", "errors", "mean ms", "p95 ms", "labelled", "accuracy"
    )
    for arm, s in data["arms"].items():
        table.add_row(
            arm, str(s["version"]), str(s["requests"]), str(s["errors"]),
            fmt_float(s["mean_latency_ms"]), fmt_float(s["p95_latency_ms"]),
            str(s["labelled"]), fmt_float(s["accuracy"]),
        )  # fmt: skip
    console.print(table)


@app.command()
def create(
    name: str,
    model: Annotated[str, typer.Option(help="Model name.")],
    a: Annotated[int, typer.Option("--a", help="Version A (control).")],
    b: Annotated[int, typer.Option("--b", help="Version B (candidate).")],
    split: Annotated[float, typer.Option(help="Percent of traffic sent to B.")] = 10.0,
) -> None:
    """Start splitting the model's default traffic (sticky per user id when one is sent)."""
    with registry_session() as session:
        test = abtests.create(session, name, model, a, b, split)
        console.print(f"A/B test {test.name!r} running: v{a} (A) vs v{b} (B), {split}% to B")


@app.command()
def show(name: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Per-arm requests, latency and accuracy so far (from the inference logs)."""
    with registry_session() as session:
        test = abtests.get(session, name)
        data = report(test, abtests.arm_stats(session, test))
    print_report(data, as_json)


@app.command()
def stop(
    name: str,
    winner: Annotated[str | None, typer.Option(help="Force the winner (A or B).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Stop the split; the final numbers and the winner are stored with the test."""
    with registry_session() as session:
        test = abtests.stop(session, name, winner)
        data = report(test, abtests.arm_stats(session, test))
    print_report(data, as_json)
