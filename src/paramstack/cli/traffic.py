"""``paramstack traffic``: split an LLM public model name between two targets (A/B, canary).

Changes are one transaction with their audit-chain entry. Gateways pick them up within
``registry_refresh_s``. ``stats`` reads the usage ledger, so it counts every worker.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from paramstack.attest.chain import AuditChain
from paramstack.cli.context import console, fmt_float, print_json, registry_session, settings
from paramstack.errors import InvalidInput
from paramstack.registry import traffic as registry
from paramstack.registry.traffic import SplitSpec
from paramstack.registry.traffic_stats import arm_usage
from paramstack.store.traffic_tables import SplitKind, TrafficSplit

app = typer.Typer(
    help="Traffic splits between LLM models: A/B tests and canaries with SLO rollback.",
    no_args_is_help=True,
)
ACTOR = "cli"


def audit_change(session: Session, split: TrafficSplit, action: str) -> None:
    """The audit entry in the same transaction as the change (no key: gateways checkpoint)."""
    event = registry.audit_event(split, action, ACTOR)
    AuditChain(None).append(session, event["kind"], event["payload"], tenant=event["tenant"])


def _known_models() -> list[str] | None:
    """Names of the configured model table, to catch typos; None when none is configured."""
    path = settings().resolved_llm_models_file
    if path is None:
        return None
    import yaml
    from pydantic import ValidationError

    from paramstack.gateway.model_table import ModelsFile

    try:
        raw = yaml.safe_load(path.read_text()) or {}
        table = ModelsFile.model_validate(raw)
        return [m.name for m in table.models] + [r.name for r in table.routers]
    except (OSError, yaml.YAMLError, ValidationError) as exc:  # reported, never skipped
        raise InvalidInput(f"cannot read the LLM model table {path}: {exc}") from exc


def _print(info: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(info)
        return
    slo = info["slo"]
    console.print(
        f"[bold]{info['name']}[/] ({info['kind']}, {info['status']}): "
        f"{info['stable']} <- {info['candidate_percent']:g}% -> {info['candidate']}",
        highlight=False,
    )
    console.print(
        f"SLO: max error rate {slo['max_error_rate']}, max p95 {slo['max_p95_ms']} ms, "
        f"window {slo['window_s']:g} s, min {slo['min_requests']} requests",
        highlight=False,
    )
    if info.get("reason"):
        console.print(f"reason: {info['reason']}", highlight=False)
    for event in info.get("history", []):
        console.print(
            f"  {event['at'][:19]} {event['action']:<8} {event['candidate_percent']:g}% "
            f"by {event['actor']}{': ' + event['reason'] if event['reason'] else ''}",
            highlight=False,
        )


@app.command("set")
def set_(
    name: Annotated[str, typer.Argument(help="The public model name clients send.")],
    stable: Annotated[str, typer.Option(help="Target serving the rest of the traffic.")],
    candidate: Annotated[str, typer.Option(help="Target receiving --percent of users.")],
    percent: Annotated[float, typer.Option(help="Candidate share, 0-100.")] = 5.0,
    kind: Annotated[SplitKind, typer.Option(help="ab or canary.")] = SplitKind.CANARY,
    max_error_rate: Annotated[float | None, typer.Option(help="Canary SLO: 5xx rate.")] = None,
    max_p95_ms: Annotated[float | None, typer.Option(help="Canary SLO: p95 latency.")] = None,
    window_s: Annotated[float, typer.Option(help="SLO sliding window.")] = 300.0,
    min_requests: Annotated[int, typer.Option(help="Judge after this many calls.")] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create or replace a split; it runs from now on (sticky per user)."""
    spec = SplitSpec(
        stable=stable, candidate=candidate, kind=kind, candidate_percent=percent,
        max_error_rate=max_error_rate, max_p95_ms=max_p95_ms, window_s=window_s,
        min_requests=min_requests,
    )  # fmt: skip
    known = _known_models()
    with registry_session() as session:
        split = registry.set_split(session, name, spec, actor=ACTOR, known_models=known)
        audit_change(session, split, "set")
        info = registry.describe_split(split)
    _print(info, as_json)


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every split with its state."""
    with registry_session() as session:
        rows = [registry.describe_split(s) for s in registry.list_splits(session)]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "kind", "status", "stable", "candidate", "percent")
    for r in rows:
        table.add_row(
            r["name"], r["kind"], r["status"], r["stable"], r["candidate"],
            f"{r['candidate_percent']:g}",
        )  # fmt: skip
    console.print(table if rows else "no traffic splits yet")


@app.command()
def show(name: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One split with its SLO and history."""
    with registry_session() as session:
        info = registry.describe_split(registry.get_split(session, name), history=True)
    _print(info, as_json)


@app.command()
def promote(
    name: str,
    reason: Annotated[str | None, typer.Option(help="Kept in the history.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Make the candidate the stable target, with all the traffic."""
    with registry_session() as session:
        split = registry.promote(session, name, actor=ACTOR, reason=reason)
        audit_change(session, split, "promote")
        info = registry.describe_split(split)
    _print(info, as_json)


@app.command()
def rollback(
    name: str,
    reason: Annotated[str, typer.Option(help="Kept in the history and the audit log.")] = (
        "rolled back from the CLI"
    ),
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Send the candidate's share to 0: all traffic goes to stable."""
    with registry_session() as session:
        split = registry.rollback(session, name, actor=ACTOR, reason=reason)
        audit_change(session, split, "rollback")
        info = registry.describe_split(split)
    _print(info, as_json)


@app.command()
def stop(name: str) -> None:
    """End the split: the name routes as the model table says again."""
    with registry_session() as session:
        split = registry.stop(session, name, actor=ACTOR)
        audit_change(session, split, "stop")
    console.print(f"stopped split {name}", highlight=False)


@app.command()
def stats(
    name: str,
    since: Annotated[str | None, typer.Option(help="ISO 8601; default: split start.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Per-arm requests, errors, latency, tokens and cost from the usage ledger."""
    start = None
    if since is not None:
        try:
            start = datetime.fromisoformat(since)
        except ValueError as exc:
            raise InvalidInput(f"--since must be ISO 8601, got {since!r}") from exc
        start = start.astimezone(UTC) if start.tzinfo else start
    with registry_session() as session:
        split = registry.get_split(session, name)
        arms = {arm: u.as_dict() for arm, u in arm_usage(session, split, since=start).items()}
    if as_json:
        print_json({"split": name, "arms": arms})
        return
    table = Table("arm", "targets", "requests", "errors", "error rate", "mean ms", "p95 ms",
                  "tokens in", "tokens out", "cost")  # fmt: skip
    for arm, a in arms.items():
        table.add_row(
            arm, ",".join(a["targets"]) or "-", str(a["requests"]), str(a["errors"]),
            fmt_float(a["error_rate"]), fmt_float(a["mean_latency_ms"]),
            fmt_float(a["p95_latency_ms"]), str(a["tokens_in"]), str(a["tokens_out"]), a["cost"],
        )  # fmt: skip
    console.print(table)
