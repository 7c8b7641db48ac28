"""CLI sub-apps through Typer's runner: rotate keys, verify a response, verify the audit chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paramstack.attest.chain import AuditChain
from paramstack.attest.envelope import sign
from paramstack.attest.keys import KeyStore
from paramstack.cli import attest as attest_cli
from paramstack.cli import audit as audit_cli
from paramstack.cli import guard as guard_cli
from paramstack.config import Settings
from paramstack.store.audit_tables import AuditEntry
from paramstack.store.engine import make_engine, session_factory, transaction


def test_rotate_verify_and_audit(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PARAMSTACK_HOME", str(settings.home))
    monkeypatch.setenv("PARAMSTACK_ATTEST_PASSPHRASE", "pw")
    runner = CliRunner()
    first = runner.invoke(attest_cli.keys_app, ["attest-rotate"])
    assert first.exit_code == 0, first.output
    store = KeyStore(settings.home / "attest-keys", "pw")
    att = sign(
        store.active(),
        model="m",
        model_version=1,
        input_data="q",
        output_data="a",
        tenant="t",
        policy_version="p",
    )
    assert runner.invoke(attest_cli.keys_app, ["attest-rotate"]).exit_code == 0
    good = tmp_path / "response.json"
    good.write_text(json.dumps({"attestation": att, "output": "a"}))
    ok = runner.invoke(attest_cli.app, ["verify", str(good)])
    assert ok.exit_code == 0 and '"ok": true' in ok.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"attestation": att, "output": "b"}))
    failed = runner.invoke(attest_cli.app, ["verify", str(bad)])
    assert failed.exit_code == 5 and "output_mismatch" in failed.output

    engine = make_engine(settings.resolved_database_url)
    chain = AuditChain(store.active(), every=2)
    with transaction(session_factory(engine)) as session:
        for i in range(5):
            chain.append(session, "guard_block", {"rule": "pii.email", "i": i})
    assert runner.invoke(audit_cli.app, ["verify"]).exit_code == 0
    with transaction(session_factory(engine)) as session:
        session.get(AuditEntry, 2).kind = "edited"  # type: ignore[union-attr]
    engine.dispose()
    broken = runner.invoke(audit_cli.app, ["verify"])
    assert broken.exit_code == 5 and '"first_bad_seq": 2' in broken.output


def test_guard_check_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARAMSTACK_HOME", str(settings.home))
    result = CliRunner().invoke(guard_cli.app, ["check", "TCKN 10000000146, mail a@b.co"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["text"] == "TCKN [TCKN], mail [EMAIL]"
    assert "10000000146" not in json.dumps(payload["findings"])
