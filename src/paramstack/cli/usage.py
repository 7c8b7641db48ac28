"""``paramstack usage report``: requests, tokens and exact cost per tenant, UTC day and model."""

from __future__ import annotations

import csv
import enum
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from paramstack.cli.context import console, print_json, registry_session
from paramstack.errors import InvalidInput
from paramstack.registry.usage import usage_report

app = typer.Typer(help="Usage and cost from the ledger.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Usage and cost from the ledger (a group even with one command, so `usage report`)."""


class Format(enum.StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def _day(text: str | None, default: date, option: str) -> date:
    if text is None:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"{option} must be a date like 2026-11-24, got {text!r}") from exc


@app.command()
def report(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    since: Annotated[str | None, typer.Option(help="First UTC day (default: --days ago).")] = None,
    until: Annotated[str | None, typer.Option(help="Last UTC day (default: today).")] = None,
    days: Annotated[int, typer.Option(min=1, help="Window length when --since is absent.")] = 7,
    fmt: Annotated[Format, typer.Option("--format", help="table, csv or json.")] = Format.TABLE,
) -> None:
    """Per day and per model; costs are exact decimals in the tenant's currency."""
    last = _day(until, datetime.now(UTC).date(), "--until")
    first = _day(since, last - timedelta(days=days - 1), "--since")
    with registry_session() as session:
        lines = [
            line.as_dict()
            for line in usage_report(session, since=first, until=last, tenant_id=tenant)
        ]
    if fmt is Format.JSON:
        print_json(lines)
    elif fmt is Format.CSV:
        fields = list(lines[0]) if lines else ["tenant", "day", "model", "requests", "cost"]
        writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(lines)
    else:
        table = Table("tenant", "day", "model", "requests", "errors", "tokens in", "tokens out",
                      "cost", "mean ms")  # fmt: skip
        for r in lines:
            table.add_row(
                r["tenant"], r["day"], r["model"], str(r["requests"]), str(r["errors"]),
                str(r["tokens_in"]), str(r["tokens_out"]), f"{r['cost']} {r['currency']}",
                f"{r['mean_latency_ms']:.1f}",
            )  # fmt: skip
        console.print(table if lines else f"no usage between {first} and {last}")
