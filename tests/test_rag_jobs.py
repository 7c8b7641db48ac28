"""Key roles and persisted ingestion jobs: migration 0006, the registry, the job runner, the CLI."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, select
from typer.testing import CliRunner

from paramstack.cli.app import app
from paramstack.errors import InvalidInput, NotFound
from paramstack.rag.jobs import INTERRUPTED, IngestJobs
from paramstack.rag.stores.edge import EdgeStore
from paramstack.registry import api_keys, tenants
from paramstack.registry.api_keys import KeySpec
from paramstack.registry.key_material import Pepper
from paramstack.registry.key_ring import KeyRing
from paramstack.registry.tenants import TenantSpec
from paramstack.store import migrate
from paramstack.store.engine import session_factory, transaction
from paramstack.store.rag_tables import RagJob
from tests.rag_support import HOSPITAL_A, documents

PEPPER = Pepper(b"p" * 32)


def test_migration_0006_adds_roles_and_the_jobs_table(engine: Engine) -> None:
    def state() -> tuple[bool, bool]:
        insp = inspect(engine)
        cols = {c["name"] for c in insp.get_columns("api_keys")}
        return "role" in cols, "rag_jobs" in insp.get_table_names()

    assert state() == (True, True)
    migrate.downgrade(engine, "0005")
    assert state() == (False, False)
    migrate.upgrade(engine)
    assert state() == (True, True)


def test_key_roles_are_validated_kept_on_rotation_and_reach_the_principal(
    engine: Engine,
) -> None:
    factory = session_factory(engine)
    with transaction(factory) as s:
        tenants.create_tenant(s, TenantSpec(id="hosp", name="Hosp"))
        admin = api_keys.create_key(s, "hosp", KeySpec(role="admin"), PEPPER)
        member = api_keys.create_key(s, "hosp", KeySpec(), PEPPER)
        assert api_keys.describe_key(admin.row)["role"] == "admin"
        rotated = api_keys.rotate_key(s, admin.row.prefix, PEPPER)
        assert rotated.row.role == "admin"
    with pytest.raises(InvalidInput), transaction(factory) as s:
        api_keys.create_key(s, "hosp", KeySpec(role="root"), PEPPER)
    with factory() as s:
        ring = KeyRing.load(s, PEPPER)
    assert ring.authenticate(rotated.plaintext).is_admin
    assert not ring.authenticate(member.plaintext).is_admin
    assert ring.authenticate(member.plaintext).role == "member"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # exited and reaped: no process has this id now (pids are not reused soon)


def test_jobs_persist_are_tenant_scoped_and_orphans_fail(engine: Engine, tmp_path: Path) -> None:
    factory = session_factory(engine)
    host = socket.gethostname()
    with transaction(factory) as s:
        for jid, worker in (("dead", f"{host}:{_dead_pid()}"), ("elsewhere", "other-host:1")):
            s.add(RagJob(id=jid, tenant_id="a", collection="default", status="running",
                         worker=worker, documents=1, done=0, chunks=0, skipped=0, replaced=0,
                         chunks_per_s=0.0))  # fmt: skip
    jobs = IngestJobs(EdgeStore(tmp_path / "store"), factory)
    try:
        dead = jobs.get("a", "dead")
        assert dead["status"] == "failed" and dead["error"] == INTERRUPTED
        assert jobs.get("a", "elsewhere")["status"] == "running"  # not ours to judge
        job = jobs.submit("a", "default", documents(HOSPITAL_A), {})
        assert job["status"] == "queued" and "tenant" not in job
        deadline = time.monotonic() + 120
        while jobs.get("a", job["id"])["status"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        done = jobs.get("a", job["id"])
        assert done["status"] == "succeeded" and done["done"] == 3 and done["chunks"] == 3
        with pytest.raises(NotFound):
            jobs.get("b", job["id"])
    finally:
        jobs.close()
    with factory() as s:  # the row itself, as a restarted process would read it
        row = s.scalar(select(RagJob).where(RagJob.id == job["id"]))
        assert row is not None and row.status == "succeeded" and row.finished_at is not None


def test_keys_cli_creates_an_admin_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARAMSTACK_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    for args in (["db", "upgrade"], ["tenants", "add", "hosp", "--name", "Hosp"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["keys", "create", "hosp", "--role", "admin", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout[result.stdout.index("{") :])["role"] == "admin"
    bad = runner.invoke(app, ["keys", "create", "hosp", "--role", "root"])
    assert bad.exit_code != 0
