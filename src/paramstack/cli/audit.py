"""``paramstack audit verify``: walk the hash chain and checkpoints, name the first bad entry."""

from __future__ import annotations

import typer

from paramstack.cli.context import print_json, registry_session

app = typer.Typer(help="Tamper-evident audit log.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Tamper-evident audit log."""


@app.command()
def verify() -> None:
    """Exit code 5 when an entry was edited, deleted, reordered or the tail cut off."""
    from paramstack.attest.chain import verify_chain
    from paramstack.attest.keys import KeyStore
    from paramstack.cli.attest import key_dir

    with registry_session() as session:
        report = verify_chain(session, KeyStore(key_dir(), b"").jwks())
    print_json(report.as_dict())
    if not report.ok:
        raise typer.Exit(5)
