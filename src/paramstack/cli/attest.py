"""``paramstack keys attest-rotate`` and ``paramstack attest verify``.

``keys_app``'s commands are mounted beside the API-key commands under ``keys``. Keys live in
``<home>/attest-keys``; the passphrase comes from the settings (``PARAMSTACK_ATTEST_PASSPHRASE``
or the embedded default's ``<home>/secrets/attest-passphrase``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from paramstack.cli.context import print_json, settings

app = typer.Typer(help="Verify signed responses.", no_args_is_help=True)
keys_app = typer.Typer(help="Attestation keys.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Verify signed responses."""


def key_dir() -> Path:
    return settings().resolved_attest_keys_dir


@keys_app.command("attest-rotate")
def attest_rotate() -> None:
    """Create a new active signing key; old public keys stay in the JWKS."""
    from paramstack.attest.keys import KeyStore

    store = KeyStore(key_dir(), settings().resolved_attest_passphrase())
    kid = store.rotate()
    print_json({"active": kid, "keys": [k["kid"] for k in store.jwks()["keys"]]})


@keys_app.command("jwks")
def jwks() -> None:
    """Print the public key set (what ``GET /v1/attestations/keys`` serves)."""
    from paramstack.attest.keys import KeyStore

    print_json(KeyStore(key_dir(), b"").jwks())


@app.command()
def verify(
    response: Annotated[Path, typer.Argument(exists=True, help="JSON with attestation + output.")],
    keys: Annotated[Path | None, typer.Option(help="JWKS file; default the local key set.")] = None,
) -> None:
    """Verify ``{"attestation": {...}, "output": "..."}``; exit code 5 when it does not hold."""
    from paramstack.attest.envelope import verify as verify_attestation
    from paramstack.attest.keys import KeyStore

    data = json.loads(response.read_text(encoding="utf-8"))
    key_set = json.loads(keys.read_text()) if keys else KeyStore(key_dir(), b"").jwks()
    result = verify_attestation(
        data["attestation"], data.get("output"), key_set, input_data=data.get("input")
    )
    print_json({"ok": result.ok, "reason": result.reason, "kid": result.kid})
    if not result.ok:
        raise typer.Exit(5)
