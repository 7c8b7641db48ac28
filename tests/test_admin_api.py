"""The admin API over real HTTP: token auth, tenants and keys (the key it creates works with
the official ``openai`` client), traffic promote/rollback/stop, and the Alertmanager webhook
rolling a canary back into the audit log."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import openai
import pytest
from sqlalchemy import select

from paramstack.attest.chain import verify_chain
from paramstack.config import Settings
from paramstack.store.audit_tables import AuditEntry
from paramstack.store.engine import make_engine, session_factory
from tests.conftest import run_server
from tests.traffic_support import ADMIN_TOKEN, traffic_gateway, wait_until

CANARY = {"stable": "chat-v1", "candidate": "chat-v2", "candidate_percent": 50,
          "max_error_rate": 0.5, "min_requests": 1000}  # fmt: skip


def _error(response: object, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    assert set(error) == {"message", "type", "code", "param"}
    if code is not None:
        assert error["code"] == code


def test_admin_token_is_required_and_never_logged(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with run_server(settings) as server, server.client() as http:  # no admin token configured
        _error(http.get("/v1/admin/tenants"), 401, "invalid_admin_token")
        closed = http.get("/v1/admin/tenants", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        _error(closed, 401, "invalid_admin_token")
    with traffic_gateway(settings, tmp_path) as gw:
        with gw.admin(None) as anonymous:
            _error(anonymous.get("/tenants"), 401, "invalid_admin_token")
            _error(anonymous.post("/alertmanager", json={"alerts": []}), 401)
            _error(anonymous.get("/keys", params={"typo": "1"}), 401)  # auth before input
        with gw.admin("wrong-token") as wrong:
            _error(wrong.get("/traffic"), 401, "invalid_admin_token")
        with gw.admin(gw.key) as tenant_key:  # an API key is no admin token
            _error(tenant_key.get("/keys"), 401)
        with gw.admin() as admin:
            assert admin.get("/tenants").status_code == 200
            _error(admin.get("/keys", params={"tennant": "acme"}), 400)
    assert ADMIN_TOKEN not in caplog.text


def test_admin_token_given_as_its_sha256(settings: Settings) -> None:
    digest = hashlib.sha256(b"only-the-hash-is-configured").hexdigest()
    cfg = settings.model_copy(update={"admin_token_sha256": digest})
    with run_server(cfg) as server, server.client() as http:
        token = {"authorization": "Bearer only-the-hash-is-configured"}
        ok = http.get("/v1/admin/keys", headers=token)
        assert (ok.status_code, ok.json()) == (200, {"object": "list", "data": []})
        _error(http.get("/v1/admin/keys", headers={"authorization": f"Bearer {digest}"}), 401)


def test_tenants_and_keys(settings: Settings, tmp_path: Path) -> None:
    with traffic_gateway(settings, tmp_path) as gw, gw.admin() as admin:
        made = admin.post("/tenants", json={"id": "globex", "name": "Globex", "currency": "EUR",
                                            "requests_per_minute": 100})  # fmt: skip
        assert made.status_code == 201 and made.json()["limits"]["requests_per_minute"] == 100
        _error(admin.post("/tenants", json={"id": "globex", "name": "Again"}), 409, "tenant_exists")
        _error(admin.post("/tenants", json={"id": "Bad Id", "name": "x"}), 400)
        _error(admin.post("/tenants", json={"id": "x", "name": "x", "extra": 1}), 400)
        _error(
            admin.post(
                "/tenants", content=b"{not json", headers={"content-type": "application/json"}
            ),
            400,
        )
        limits = admin.patch(
            "/tenants/globex/limits", json={"requests_per_minute": None, "tokens_per_day": 5000}
        )
        assert limits.json()["limits"] == {"requests_per_second": None, "requests_per_minute": None,
                                           "tokens_per_day": 5000}  # fmt: skip
        _error(admin.patch("/tenants/globex/limits", json={"requests_per_second": 0}), 400)
        priced = admin.post(
            "/tenants/globex/prices",
            json={"model": "chat-v1", "input_per_1k": "0.25", "output_per_1k": "1"},
        )
        assert priced.json()["prices"]["chat-v1"] == {"input_per_1k": "0.25", "output_per_1k": "1"}
        _error(
            admin.post(
                "/tenants/globex/prices",
                json={"model": "m", "input_per_1k": "1e30", "output_per_1k": "1"},
            ),
            400,
        )
        _error(admin.get("/tenants/nobody"), 404, "tenant_not_found")
        assert [t["id"] for t in admin.get("/tenants").json()["data"]] == ["acme", "globex"]
        created = admin.post("/tenants/globex/keys", json={"name": "app"})
        assert created.status_code == 201
        key, prefix = created.json()["key"], created.json()["prefix"]
        _error(admin.post("/tenants/nobody/keys", json={}), 404)
        _error(admin.post("/tenants/globex/keys", json={"expires_at": "2001-01-01T00:00:00Z"}), 400)
        assert created.json()["role"] == "member"
        _error(admin.post("/tenants/globex/keys", json={"role": "root"}), 400)
        boss = admin.post("/tenants/acme/keys", json={"name": "ingest", "role": "admin"})
        assert boss.status_code == 201 and boss.json()["role"] == "admin"
        client = openai.OpenAI(base_url=f"{gw.server.url}/v1", api_key=key, max_retries=0)
        wait_until(lambda: _works(client))  # the key ring refresh picks the new key up
        listed = admin.get("/keys", params={"tenant": "globex"}).json()["data"]
        assert [k["prefix"] for k in listed] == [prefix] and "key" not in listed[0]
        rotated = admin.post(f"/keys/{prefix}/rotate", json={"grace_hours": 0}).json()
        assert rotated["rotated_from_id"] is not None and rotated["key"] != key
        revoked = admin.post(f"/keys/{rotated['prefix']}/revoke").json()
        assert revoked["revoked_at"] is not None
        _error(admin.post(f"/keys/{prefix}/rotate"), 409, "key_revoked")
        _error(admin.post("/keys/psk_aaaaaaaaaaaa/revoke"), 404, "key_not_found")
        _error(admin.post("/keys/not-a-prefix/revoke"), 400)
        wait_until(lambda: not _works(client))
    assert key not in (tmp_path / "models.yaml").read_text()


def _works(client: openai.OpenAI) -> bool:
    try:
        client.models.list()
    except openai.AuthenticationError:
        return False
    return True


def test_traffic_set_promote_rollback_stop(settings: Settings, tmp_path: Path) -> None:
    with traffic_gateway(settings, tmp_path) as gw, gw.admin() as admin:
        _error(admin.put("/traffic/chat", json={**CANARY, "candidate": "chat-v9"}), 400)
        _error(admin.put("/traffic/chat", json={**CANARY, "candidate_percent": 150}), 400)
        _error(admin.put("/traffic/bad%20name", json=CANARY), 400)
        _error(admin.post("/traffic/chat/promote"), 404, "split_not_found")
        made = admin.put("/traffic/chat", json=CANARY)
        assert made.status_code == 200 and made.json()["status"] == "running"
        # effective at once in this process, before any snapshot refresh
        served = {gw.ask(f"u{i}") for i in range(30)}
        assert served == {"chat-v1", "chat-v2"}
        promoted = admin.post("/traffic/chat/promote", json={"reason": "looks good"}).json()
        assert (promoted["status"], promoted["stable"]) == ("promoted", "chat-v2")
        assert {gw.ask(f"u{i}") for i in range(30)} == {"chat-v2"}
        _error(admin.post("/traffic/chat/rollback"), 409, "split_not_running")
        assert admin.put("/traffic/chat", json=CANARY).json()["revision"] == 3
        rolled = admin.post("/traffic/chat/rollback", json={"reason": "by hand"}).json()
        assert (rolled["status"], rolled["candidate_percent"]) == ("rolled_back", 0)
        assert {gw.ask(f"u{i}") for i in range(30)} == {"chat-v1"}
        stats = admin.get("/traffic/chat/stats").json()
        assert stats["live_window"]["stable"]["requests"] >= 30
        assert float(stats["live_window"]["stable"]["cost"]["USD"]) > 0  # chat-v1 is priced
        _error(admin.get("/traffic/chat/stats", params={"since": "yesterday"}), 400)
        assert admin.post("/traffic/chat/stop").json()["status"] == "stopped"
        with pytest.raises(openai.NotFoundError):  # the name is no model once the split stops
            gw.openai.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "hi"}]
            )
        history = admin.get("/traffic/chat").json()["history"]
        assert [h["action"] for h in history] == ["set", "promote", "set", "rollback", "stop"]
        assert admin.get("/traffic").json()["data"][0]["name"] == "chat"


def _alert(
    status: str, model: str, name: str = "CanaryErrorBudgetBurn", label: str = "paramstack_model"
) -> dict[str, object]:
    return {
        "status": status,
        "labels": {"alertname": name, label: model, "severity": "page"},
        "annotations": {"summary": f"{model} canary 5xx over budget"},
        "startsAt": "2026-11-24T06:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph", "fingerprint": "c0ffee",
    }  # fmt: skip


def _payload(*alerts: dict[str, object]) -> dict[str, object]:
    return {
        "version": "4", "groupKey": "{}:{alertname=\"CanaryErrorBudgetBurn\"}",
        "truncatedAlerts": 0, "status": "firing", "receiver": "paramstack",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093", "alerts": list(alerts),
    }  # fmt: skip


def test_alertmanager_firing_canary_alert_rolls_it_back_and_audits(
    settings: Settings, tmp_path: Path
) -> None:
    with traffic_gateway(settings, tmp_path) as gw, gw.admin() as admin:
        assert admin.put("/traffic/chat", json=CANARY).status_code == 200
        ab = {"stable": "chat-v1", "candidate": "chat-v2", "kind": "ab", "candidate_percent": 50}
        assert admin.put("/traffic/ab", json=ab).status_code == 200
        before = {gw.ask(f"u{i}") for i in range(20)}
        answer = admin.post("/alertmanager", json=_payload(
            _alert("resolved", "chat"), _alert("firing", "unknown-model"),
            _alert("firing", "ab", label="split"), _alert("firing", "chat"),
        ))  # fmt: skip
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["rolled_back"] == ["chat"]
        assert [i["model"] for i in body["ignored"]] == ["chat", "unknown-model", "ab"]
        after = {gw.ask(f"u{i}") for i in range(20)}
        shown = admin.get("/traffic/chat").json()
        repeat = admin.post("/alertmanager", json=_payload(_alert("firing", "chat"))).json()
        _error(admin.post("/alertmanager", json={"alerts": "nope"}), 400)
    assert before == {"chat-v1", "chat-v2"} and after == {"chat-v1"}
    assert shown["candidate_percent"] == 0 and shown["status"] == "rolled_back"
    assert shown["reason"].startswith("Alertmanager alert CanaryErrorBudgetBurn firing")
    assert repeat["rolled_back"] == [] and "rolled_back" in repeat["ignored"][0]["reason"]
    reasons = [i["reason"] for i in body["ignored"]]
    assert reasons[0] == "status resolved" and "no traffic split" in reasons[1]
    assert "not a canary" in reasons[2]
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_factory(engine)() as s:
            entries = s.scalars(
                select(AuditEntry).where(AuditEntry.kind == "traffic_rollback")
            ).all()
            assert verify_chain(s, None).ok
    finally:
        engine.dispose()
    [entry] = entries
    assert entry.payload["actor"] == "alertmanager" and entry.payload["candidate_percent"] == 0
    assert "CanaryErrorBudgetBurn" in entry.payload["reason"]
