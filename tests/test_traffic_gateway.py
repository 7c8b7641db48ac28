"""Traffic splits end to end with the official ``openai`` client: a real gateway, two
loopback upstreams, the split in the registry. The percentage holds, users stick to their
arm, every arm's numbers reach the ledger and Prometheus, and a canary that breaks its SLO
is rolled back by the gateway itself (registry, audit chain, metric)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from paramstack.attest.chain import verify_chain
from paramstack.attest.keys import KeyStore
from paramstack.cli import audit
from paramstack.cli import traffic as traffic_cli
from paramstack.config import Settings
from paramstack.registry import traffic as registry
from paramstack.registry.traffic import SplitSpec
from paramstack.store.audit_tables import AuditEntry
from paramstack.store.engine import make_engine, session_factory
from paramstack.store.tenant_tables import UsageRecord
from paramstack.store.traffic_tables import SplitKind, SplitStatus
from tests.traffic_support import MESSAGES, traffic_gateway, wait_until

USERS = 150


def _rows(settings: Settings) -> list[UsageRecord]:
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_factory(engine)() as s:
            return list(s.scalars(select(UsageRecord).order_by(UsageRecord.id)))
    finally:
        engine.dispose()


def test_split_honours_the_percentage_and_sticks_per_user(
    settings: Settings, tmp_path: Path
) -> None:
    split = SplitSpec(stable="chat-v1", candidate="chat-v2", kind=SplitKind.AB,
                      candidate_percent=30)  # fmt: skip
    with traffic_gateway(settings, tmp_path, split) as gw:
        first = {f"user-{i}": gw.ask(f"user-{i}") for i in range(USERS)}
        again = {u: gw.ask(u) for u in list(first)[:40]}
        listed = [m.id for m in gw.client().models.list()]
        metrics = httpx.get(f"{gw.server.url}/metrics").text
        wait_until(lambda: len(_rows(settings)) == USERS + 40)
        with gw.admin() as admin:
            stats = admin.get("/traffic/chat/stats").json()
        hits = (gw.stable.hits["tiny-chat"], gw.candidate.hits["tiny-chat"])
    arms = Counter(first.values())
    assert set(arms) == {"chat-v1", "chat-v2"}
    assert 0.2 * USERS <= arms["chat-v2"] <= 0.4 * USERS  # 30 % +- 10 points
    assert again == {u: first[u] for u in again}  # the same user, the same arm
    candidate_calls = arms["chat-v2"] + sum(1 for m in again.values() if m == "chat-v2")
    assert hits == (USERS + 40 - candidate_calls, candidate_calls)
    assert "chat" in listed  # the split's public name is a model clients can see
    line = f'paramstack_traffic_requests_total{{arm="candidate",split="chat"}} {candidate_calls}.0'
    assert line in metrics
    assert 'paramstack_traffic_cost_total{arm="candidate",currency="USD",split="chat"}' in metrics
    rows = _rows(settings)
    traffic = [json.loads(r.routing or "{}")["traffic"] for r in rows]
    assert all(
        t["split"] == "chat" and t["target"] == r.model for t, r in zip(traffic, rows, strict=True)
    )
    assert stats["arms"]["candidate"]["requests"] == candidate_calls
    assert stats["arms"]["stable"]["requests"] == USERS + 40 - candidate_calls
    assert stats["arms"]["candidate"]["targets"] == ["chat-v2"]
    # each arm is billed at its own target's prices: chat-v2 is cheaper per token
    stable_cost = float(stats["arms"]["stable"]["cost"]) / stats["arms"]["stable"]["requests"]
    candidate_cost = float(stats["arms"]["candidate"]["cost"]) / candidate_calls
    assert candidate_cost < stable_cost


def test_no_user_falls_back_to_the_api_key_for_stickiness(
    settings: Settings, tmp_path: Path
) -> None:
    split = SplitSpec(stable="chat-v1", candidate="chat-v2", kind=SplitKind.AB,
                      candidate_percent=50)  # fmt: skip
    with traffic_gateway(settings, tmp_path, split) as gw:
        client = gw.client()
        answers = {
            client.chat.completions.create(model="chat", messages=MESSAGES, max_tokens=1).model
            for _ in range(12)
        }
    assert len(answers) == 1  # one key, one arm


@pytest.mark.parametrize(
    ("candidate", "slo", "words"),
    [
        ("chat-v2-broken", {"max_error_rate": 0.2}, "error rate"),
        ("chat-v2-slow", {"max_p95_ms": 20.0}, "p95 latency"),
    ],
)
def test_canary_breaking_its_slo_is_rolled_back_automatically(
    settings: Settings, tmp_path: Path, candidate: str, slo: dict[str, float], words: str
) -> None:
    split = SplitSpec(stable="chat-v1", candidate=candidate, candidate_percent=50,
                      window_s=60, min_requests=5, **slo)  # type: ignore[arg-type]  # fmt: skip
    with traffic_gateway(settings, tmp_path, split) as gw:
        answered = []
        with gw.admin() as admin:
            for i in range(200):  # until the watcher (every 0.1 s) has seen enough
                answered.append(gw.ask(f"user-{i}"))
                local = admin.get("/traffic/chat").json()["in_this_process"]
                if local["status"] == "rolled_back":  # what the gateway routes by now
                    break
        assert answered.count("chat-v1") < len(answered)  # the canary did get traffic
        after = [gw.ask(f"user-{i}") for i in range(40)]  # the same users, all on stable now
        metrics = httpx.get(f"{gw.server.url}/metrics").text
        with gw.admin() as admin:
            shown = admin.get("/traffic/chat").json()
    assert after == ["chat-v1"] * 40
    assert shown["status"] == "rolled_back" and shown["candidate_percent"] == 0
    assert shown["reason"].startswith("SLO breached: " + words)
    assert shown["history"][-1]["actor"] == "slo-watcher"
    assert 'paramstack_traffic_rollbacks_total{split="chat",trigger="slo"} 1.0' in metrics
    assert 'paramstack_traffic_candidate_percent{split="chat"} 0.0' in metrics
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_factory(engine)() as s:
            assert registry.get_split(s, "chat").status == SplitStatus.ROLLED_BACK
            entry = s.scalars(select(AuditEntry).where(AuditEntry.kind == "traffic_rollback")).one()
            assert verify_chain(s, None).ok
    finally:
        engine.dispose()
    assert entry.payload["split"] == "chat" and entry.payload["actor"] == "slo-watcher"
    assert words in entry.payload["reason"]
    env = {"PARAMSTACK_HOME": str(settings.home)}
    verified = CliRunner().invoke(audit.app, ["verify"], env=env)
    assert verified.exit_code == 0, verified.output


def test_a_rollback_from_another_process_reaches_the_gateway_by_snapshot(
    settings: Settings, tmp_path: Path
) -> None:
    """The CLI rolls back (its own transaction and audit entry) while a signing gateway
    appends an entry per answer: the gateway follows by snapshot and the chain still holds."""
    signed = settings.model_copy(update={"attest_passphrase": SecretStr("pass")})
    KeyStore(signed.resolved_attest_keys_dir, "pass").rotate()
    split = SplitSpec(stable="chat-v1", candidate="chat-v2", candidate_percent=50)
    with traffic_gateway(signed, tmp_path, split) as gw:
        assert {gw.ask(f"u{i}") for i in range(20)} == {"chat-v1", "chat-v2"}
        env = {"PARAMSTACK_HOME": str(settings.home)}
        out = CliRunner().invoke(traffic_cli.app, ["rollback", "chat", "--reason", "ops"], env=env)
        assert out.exit_code == 0, out.output
        wait_until(lambda: {gw.ask(f"u{i}") for i in range(20)} == {"chat-v1"})
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_factory(engine)() as s:
            kinds = Counter(e.kind for e in s.scalars(select(AuditEntry)))
            jwks = KeyStore(signed.resolved_attest_keys_dir, b"").jwks()
            report = verify_chain(s, jwks)
    finally:
        engine.dispose()
    assert kinds["traffic_rollback"] == 1 and kinds["attestation"] >= 40
    assert report.ok and report.checkpoints >= 1, report


def test_a_split_can_send_its_candidate_share_through_the_complexity_router(
    settings: Settings, tmp_path: Path
) -> None:
    split = SplitSpec(stable="chat-v1", candidate="auto-v2", kind=SplitKind.AB,
                      candidate_percent=100)  # fmt: skip
    with traffic_gateway(settings, tmp_path, split) as gw:
        answered = {gw.ask(f"u{i}") for i in range(5)}
        wait_until(lambda: len(_rows(settings)) == 5)
    assert answered == {"chat-v2"}  # the router's pick, on the candidate arm
    for row in _rows(settings):
        routing = json.loads(row.routing or "{}")
        assert routing["traffic"]["arm"] == "candidate"
        assert routing["traffic"]["target"] == "auto-v2"
        assert routing["router"]["chosen"] == "chat-v2"  # both steps in one routing JSON
