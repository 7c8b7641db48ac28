"""``paramstack keys``: create (printed once), list, revoke, rotate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from paramstack.cli.context import console, err_console, print_json, registry_session, settings
from paramstack.cli.tenants import LimitOption, parse_limit
from paramstack.config import Settings
from paramstack.errors import InvalidInput
from paramstack.registry import api_keys as registry
from paramstack.registry.api_keys import CreatedKey, KeySpec
from paramstack.registry.key_material import PREFIX_LEN, Pepper, resolve_pepper, split_key

app = typer.Typer(
    help="API keys: shown once, stored only as a peppered hash.", no_args_is_help=True
)


def _pepper(cfg: Settings) -> Pepper:
    return resolve_pepper(cfg)


def _prefix(key_or_prefix: str) -> str:
    """Accept the prefix or, if pasted by mistake, the whole key (only its prefix is used)."""
    return split_key(key_or_prefix) or key_or_prefix[:PREFIX_LEN]


def _show_once(created: CreatedKey, as_json: bool) -> None:
    info = registry.describe_key(created.row)
    if as_json:
        print_json({**info, "key": created.plaintext})
        return
    console.print(created.plaintext, highlight=False, soft_wrap=True)
    err_console.print(
        f"API key {info['prefix']} for tenant {info['tenant']}: store it now, it is not shown "
        "again (only a hash is kept).",
        highlight=False,
    )


def _parse_expiry(expires_at: str | None, expires_in_days: float | None) -> datetime | None:
    if expires_at is not None and expires_in_days is not None:
        raise InvalidInput("give --expires-at or --expires-in-days, not both")
    if expires_in_days is not None:
        return datetime.now(UTC) + timedelta(days=expires_in_days)
    if expires_at is None:
        return None
    try:
        moment = datetime.fromisoformat(expires_at)
    except ValueError as exc:
        raise InvalidInput(f"--expires-at must be ISO 8601, got {expires_at!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command()
def create(
    tenant_id: Annotated[str, typer.Argument(help="The tenant the key belongs to.")],
    name: Annotated[str, typer.Option(help="A label, e.g. the app using the key.")] = "",
    expires_at: Annotated[str | None, typer.Option(help="ISO 8601 moment (UTC if naive).")] = None,
    expires_in_days: Annotated[float | None, typer.Option(help="Expire after N days.")] = None,
    rps: LimitOption = None,
    rpm: LimitOption = None,
    tokens_per_day: LimitOption = None,
    role: Annotated[
        str, typer.Option(help="member, or admin: may also ingest/delete RAG documents.")
    ] = "member",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (includes the key).")] = False,
) -> None:
    """Create a key and print it once; per-key limits tighten the tenant's."""
    cfg = settings()
    spec = KeySpec(
        name=name,
        role=role,
        expires_at=_parse_expiry(expires_at, expires_in_days),
        requests_per_second=parse_limit(rps, "--rps"),
        requests_per_minute=parse_limit(rpm, "--rpm"),
        tokens_per_day=parse_limit(tokens_per_day, "--tokens-per-day"),
    )
    with registry_session(cfg) as session:
        created = registry.create_key(session, tenant_id, spec, _pepper(cfg))
    _show_once(created, as_json)


@app.command("list")
def list_(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Keys with their prefixes and state (never the key or its hash)."""
    with registry_session() as session:
        rows = [registry.describe_key(k) for k in registry.list_keys(session, tenant)]
    if as_json:
        print_json(rows)
        return
    table = Table("prefix", "tenant", "name", "role", "created", "expires", "revoked")
    for r in rows:
        table.add_row(
            r["prefix"], r["tenant"], r["name"] or "-", r["role"], (r["created_at"] or "")[:19],
            (r["expires_at"] or "-")[:19], (r["revoked_at"] or "-")[:19],
        )  # fmt: skip
    console.print(table if rows else "no API keys yet")


@app.command()
def revoke(prefix: Annotated[str, typer.Argument(help="The key's prefix (psk_…).")]) -> None:
    """Revoke a key; gateways refuse it within their key refresh period."""
    with registry_session() as session:
        row = registry.revoke_key(session, _prefix(prefix))
        shown = row.prefix
    console.print(f"revoked {shown}", highlight=False)


@app.command()
def rotate(
    prefix: Annotated[str, typer.Argument(help="The key's prefix (psk_…).")],
    grace_hours: Annotated[
        float, typer.Option(help="Hours the old key keeps working; 0 revokes it now.")
    ] = 0.0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Replace a key with a new one (same tenant, name and limits), printed once."""
    cfg = settings()
    with registry_session(cfg) as session:
        created = registry.rotate_key(
            session, _prefix(prefix), _pepper(cfg), grace=timedelta(hours=grace_hours)
        )
    _show_once(created, as_json)
