"""``paramstack tenants``: add, list, show, set-limits, set-price, set-policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from paramstack.cli.context import console, print_json, registry_session, settings
from paramstack.errors import InvalidInput
from paramstack.guard import overrides
from paramstack.guard.policy import Policy
from paramstack.registry import tenants as registry
from paramstack.registry.tenants import TenantSpec, plain

app = typer.Typer(help="Tenants: limits, defaults and price books.", no_args_is_help=True)

UNLIMITED = ("none", "unlimited", "off")
LimitOption = Annotated[
    str | None, typer.Option(help="A positive integer, or 'none' for unlimited.")
]


def parse_limit(text: str | None, option: str) -> int | None:
    """``'none'`` (or ``unlimited``/``off``) clears a limit; anything else must be >= 1."""
    if text is None or text.strip().lower() in UNLIMITED:
        return None
    try:
        value = int(text.replace("_", ""))
    except ValueError as exc:
        raise InvalidInput(f"{option} must be an integer or 'none', got {text!r}") from exc
    if value < 1:
        raise InvalidInput(f"{option} must be at least 1 (use 'none' for unlimited)")
    return value


def _print(info: dict[str, object], as_json: bool) -> None:
    if as_json:
        print_json(info)
        return
    for key, value in info.items():
        shown = json.dumps(value) if isinstance(value, dict | list) else value
        console.print(f"[bold]{key}[/]: {shown}", highlight=False)


@app.command()
def add(
    tenant_id: Annotated[str, typer.Argument(help="Org id: lowercase letters, digits, - and _.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    domain: Annotated[str, typer.Option(help="e.g. health, law, general.")] = "general",
    default_model: Annotated[
        str | None, typer.Option(help="Model used when none is named.")
    ] = None,
    default_adapter: Annotated[str | None, typer.Option(help="LoRA adapter for this org.")] = None,
    rag_collection: Annotated[str | None, typer.Option(help="Vector collection name.")] = None,
    rag_policy: Annotated[
        str | None,
        typer.Option(help="Chat retrieval: off | always | auto (default: auto with a collection)."),
    ] = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 code of the price book.")] = "USD",
    rps: LimitOption = None,
    rpm: LimitOption = None,
    tokens_per_day: LimitOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a tenant (limits default to unlimited)."""
    spec = TenantSpec(
        id=tenant_id,
        name=name,
        domain=domain,
        default_model=default_model,
        default_adapter=default_adapter,
        rag_collection=rag_collection,
        rag_policy=rag_policy,
        currency=currency,
        requests_per_second=parse_limit(rps, "--rps"),
        requests_per_minute=parse_limit(rpm, "--rpm"),
        tokens_per_day=parse_limit(tokens_per_day, "--tokens-per-day"),
    )
    with registry_session() as session:
        info = registry.describe_tenant(registry.create_tenant(session, spec))
    if as_json:
        print_json(info)
    else:
        console.print(f"created tenant [bold]{tenant_id}[/] ({name})", highlight=False)


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every tenant with its limits."""
    with registry_session() as session:
        rows = [registry.describe_tenant(t) for t in registry.list_tenants(session)]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "domain", "default model", "req/s", "req/min", "tokens/day")
    for r in rows:
        limits = r["limits"]
        table.add_row(
            r["id"], r["name"], r["domain"], r["default_model"] or "-",
            *(str(limits[k] or "∞") for k in registry.LIMIT_FIELDS),
        )  # fmt: skip
    console.print(table if rows else "no tenants yet")


def _with_policy_version(info: dict[str, object], base: Policy) -> dict[str, object]:
    """The version the gateway signs with: the base policy's, or the merged one's."""
    override = info.get("guard_policy")
    merged = overrides.merge(
        base, override if isinstance(override, dict) else None, str(info["id"])
    )
    return {**info, "guard_policy_version": merged.version}


@app.command()
def show(tenant_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One tenant with its limits, price book and guard policy override."""
    base = Policy.from_yaml(settings().guard_policy_file)
    with registry_session() as session:
        info = registry.describe_tenant(registry.get_tenant(session, tenant_id))
    _print(_with_policy_version(info, base), as_json)


@app.command("set-policy")
def set_policy(
    tenant_id: str,
    file: Annotated[
        Path | None, typer.Argument(help="YAML with the parts of the policy to override.")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Back to the base policy.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Override parts of the guard policy for one tenant (validated; invalid = nothing stored).

    The gateway picks the change up at its next registry refresh.
    """
    if (file is None) == (not clear):
        raise InvalidInput("give either a policy FILE or --clear")
    override = overrides.load_override(file) if file is not None else None
    base = Policy.from_yaml(settings().guard_policy_file)
    with registry_session() as session:
        info = registry.describe_tenant(
            registry.set_guard_policy(session, tenant_id, override, base)
        )
    shown = _with_policy_version(info, base)
    _print({k: shown[k] for k in ("id", "guard_policy", "guard_policy_version")}, as_json)


@app.command("set-limits")
def set_limits(
    tenant_id: str,
    rps: LimitOption = None,
    rpm: LimitOption = None,
    tokens_per_day: LimitOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Change requests/s, requests/min and tokens/day; options left out stay as they are."""
    given = {
        "requests_per_second": (rps, "--rps"),
        "requests_per_minute": (rpm, "--rpm"),
        "tokens_per_day": (tokens_per_day, "--tokens-per-day"),
    }
    changes = {
        field: parse_limit(text, option)
        for field, (text, option) in given.items()
        if text is not None
    }
    if not changes:
        raise InvalidInput("give at least one of --rps, --rpm, --tokens-per-day")
    with registry_session() as session:
        info = registry.describe_tenant(registry.set_limits(session, tenant_id, changes))
    _print({"id": info["id"], "limits": info["limits"]}, as_json)


@app.command("set-price")
def set_price(
    tenant_id: str,
    model: str,
    input_per_1k: Annotated[str, typer.Option("--input", help="Price per 1k prompt tokens.")],
    output_per_1k: Annotated[str, typer.Option("--output", help="Price per 1k completion tokens.")],
) -> None:
    """Set one model's prices (decimal strings, at most 9 decimal places; never rounded)."""
    inp = registry.parse_price(input_per_1k, "--input")
    out = registry.parse_price(output_per_1k, "--output")
    with registry_session() as session:
        price = registry.set_price(session, tenant_id, model, inp, out)
        currency = registry.get_tenant(session, tenant_id).currency
        shown = f"{plain(price.input_per_1k)} in / {plain(price.output_per_1k)} out"
    console.print(f"{tenant_id} {model}: {shown} {currency} per 1k tokens", highlight=False)
