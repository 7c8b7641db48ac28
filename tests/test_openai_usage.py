"""``GET /v1/usage``: a tenant's own ledger per UTC day and model, exact costs, no leaks.

Two tenants call the same gateway; each report must hold only its own rows. An older row
written straight into the ledger checks the day grouping and the since/until window.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from paramstack.config import Settings
from paramstack.gateway.app import create_app
from paramstack.registry import api_keys, tenants
from paramstack.registry.api_keys import KeySpec
from paramstack.registry.key_material import resolve_pepper
from paramstack.registry.tenants import TenantSpec
from paramstack.store.engine import make_engine, session_factory, transaction
from paramstack.store.tenant_tables import UsageRecord
from tests.fake_upstream import chat_prompt_tokens
from tests.test_openai_gateway import MESSAGES, cost, ledger, open_gateway

GLOBEX_IN, GLOBEX_OUT = Decimal("0.003"), Decimal("0.007")


def add_globex(settings: Settings, old_day: datetime) -> str:
    """A second tenant (EUR prices), plus one old acme row on ``old_day``."""
    engine = make_engine(settings.resolved_database_url)
    try:
        with transaction(session_factory(engine)) as s:
            tenants.create_tenant(s, TenantSpec(id="globex", name="Globex", currency="EUR"))
            tenants.set_price(s, "globex", "chat-small", GLOBEX_IN, GLOBEX_OUT)
            key = api_keys.create_key(s, "globex", KeySpec(), resolve_pepper(settings)).plaintext
            s.add(
                UsageRecord(
                    request_id="old-1", tenant_id="acme", key_id=None, model="chat-small",
                    backend="openai-compatible", tokens_in=10, tokens_out=20,
                    cost=Decimal("0.000000000001"), currency="USD", latency_ms=5.0,
                    status="ok", status_code=200, day=old_day.date(), created_at=old_day,
                )
            )  # fmt: skip
            return key
    finally:
        engine.dispose()


def wait_for_rows(settings: Settings, n: int) -> None:
    deadline = time.monotonic() + 10
    while len(ledger(settings)) < n:
        assert time.monotonic() < deadline, "the ledger rows were never flushed"
        time.sleep(0.05)


def get_usage(http: httpx.Client, key: str, **params: str) -> httpx.Response:
    return http.get("/v1/usage", params=params, headers={"authorization": f"Bearer {key}"})


def test_usage_is_per_tenant_per_day_and_model_with_exact_costs(
    settings: Settings, tmp_path: Path
) -> None:
    today = datetime.now(UTC)
    old = today - timedelta(days=3)
    globex_key = add_globex(settings, old)
    with open_gateway(settings, tmp_path) as gw:
        acme = gw.client()
        for _ in range(2):
            acme.chat.completions.create(model="chat-small", messages=MESSAGES, max_tokens=3)
        acme.embeddings.create(model="embed-small", input="a b c")
        globex = gw.client(globex_key)
        globex.chat.completions.create(model="chat-small", messages=MESSAGES, max_tokens=4)
        wait_for_rows(settings, 5)
        with gw.server.client() as http:
            mine = get_usage(http, gw.key)
            theirs = get_usage(http, globex_key)
            window = get_usage(
                http, gw.key, since=old.date().isoformat(), until=old.date().isoformat()
            )
            reversed_ = get_usage(http, gw.key, since="2026-02-02", until="2026-02-01")
            malformed = get_usage(http, gw.key, since="yesterday")
            anonymous = http.get("/v1/usage")
            misspelt = get_usage(http, gw.key, start="2026-01-01")
            too_long = get_usage(http, gw.key, since="2020-01-01", until="2026-01-01")

    prompt = chat_prompt_tokens(MESSAGES)
    day, old_day = today.date().isoformat(), old.date().isoformat()
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["tenant"] == "acme" and body["until"] == day
    lines = [{k: v for k, v in d.items() if k != "mean_latency_ms"} for d in body["data"]]
    assert lines == [
        {"day": old_day, "model": "chat-small", "currency": "USD", "requests": 1, "errors": 0,
         "tokens_in": 10, "tokens_out": 20, "cost": "0.000000000001"},
        {"day": day, "model": "chat-small", "currency": "USD", "requests": 2, "errors": 0,
         "tokens_in": 2 * prompt, "tokens_out": 6, "cost": _text(2 * cost(prompt, 3))},
        {"day": day, "model": "embed-small", "currency": "USD", "requests": 1, "errors": 0,
         "tokens_in": 3, "tokens_out": 0, "cost": _text(cost(3, 0))},
    ]  # fmt: skip

    assert theirs.status_code == 200
    other = theirs.json()
    assert other["tenant"] == "globex"
    expected = (GLOBEX_IN * prompt + GLOBEX_OUT * 4) / 1000
    assert [(d["model"], d["currency"], d["requests"], d["cost"]) for d in other["data"]] == [
        ("chat-small", "EUR", 1, _text(expected))
    ]

    assert [d["day"] for d in window.json()["data"]] == [old_day]
    for response, param in [
        (reversed_, "until"),
        (malformed, "since"),
        (too_long, "since"),
        (misspelt, "start"),
    ]:
        _assert_error(response, 400, param)
    _assert_error(anonymous, 401, None)


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _assert_error(response: httpx.Response, status: int, param: str | None) -> None:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["param"] == param


def test_usage_is_documented_with_bearer_auth_and_our_error_shape() -> None:
    schema = create_app(Settings(home=Path("unused"))).openapi()
    operation = schema["paths"]["/v1/usage"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"since", "until"}
    assert operation["security"] == [{"HTTPBearer": []}]
    for status in ("400", "401"):
        ref = operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        assert ref == "#/components/schemas/ErrorResponse"
    assert "422" not in operation["responses"]
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok == "#/components/schemas/UsageReport"
    cost_field = schema["components"]["schemas"]["UsageDay"]["properties"]["cost"]
    assert cost_field["type"] == "string"


def test_usage_window_defaults_and_refuses_openai_error_for_unknown_key(
    settings: Settings, tmp_path: Path
) -> None:
    with open_gateway(settings, tmp_path) as gw, gw.server.client() as http:
        response = get_usage(http, gw.key)
        with_bad_key = get_usage(http, "psk_" + "a" * 12 + "_" + "b" * 43)
    body = response.json()
    today = datetime.now(UTC).date()
    assert body["data"] == []
    assert (body["since"], body["until"]) == (
        (today - timedelta(days=6)).isoformat(),
        today.isoformat(),
    )
    _assert_error(with_bad_key, 401, None)
