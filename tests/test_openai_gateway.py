"""The OpenAI-compatible routes end to end, with the official ``openai`` SDK as the client.

A real gateway (uvicorn, SQLite, in-process limiter, batched ledger) in front of a real
OpenAI-compatible HTTP server on loopback (``tests.fake_upstream``), with a tenant and an API
key created through the registry, as an administrator would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from sqlalchemy import select

from paramstack.config import Settings
from paramstack.registry import api_keys, tenants
from paramstack.registry.api_keys import KeySpec
from paramstack.registry.key_material import resolve_pepper
from paramstack.registry.tenants import TenantSpec
from paramstack.store.engine import make_engine, session_factory, transaction
from paramstack.store.tenant_tables import UsageRecord
from tests.conftest import LiveServer, free_port, run_server
from tests.fake_upstream import WORDS, Upstream, chat_prompt_tokens, run_upstream

IN_PRICE, OUT_PRICE = Decimal("0.5"), Decimal("1.5")  # per 1k tokens


@dataclass
class Gateway:
    server: LiveServer
    upstream: Upstream
    key: str

    def client(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.server.url}/v1", api_key=key or self.key, max_retries=0
        )

    def async_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.server.url}/v1", api_key=self.key, max_retries=0)


def write_models(path: Path, upstream: str) -> Path:
    route = {"backend": "openai-compatible", "base_url": upstream}
    models = [
        {**route, "name": "chat-small", "upstream_model": "tiny-chat"},
        {**route, "name": "slow-chat", "upstream_model": "slow", "max_output_tokens": 100},
        {**route, "name": "embed-small", "upstream_model": "tiny-embed", "kind": "embedding"},
        {
            **route,
            "name": "broken",
            "upstream_model": "fail-500",
            "max_retries": 2,
            "backoff_s": 0.01,
            "breaker_failures": 2,
            "breaker_reset_s": 60,
        },
    ]
    path.write_text(yaml.safe_dump({"models": models}))
    return path


def create_tenant(settings: Settings, **limits: int) -> str:
    engine = make_engine(settings.resolved_database_url)
    try:
        with transaction(session_factory(engine)) as s:
            tenants.create_tenant(s, TenantSpec(id="acme", name="Acme", **limits))  # type: ignore[arg-type]
            for model in ("chat-small", "slow-chat", "embed-small"):
                tenants.set_price(s, "acme", model, IN_PRICE, OUT_PRICE)
            return api_keys.create_key(s, "acme", KeySpec(), resolve_pepper(settings)).plaintext
    finally:
        engine.dispose()


@contextmanager
def open_gateway(settings: Settings, tmp_path: Path, **limits: int) -> Iterator[Gateway]:
    key = create_tenant(settings, **limits)
    with run_upstream(free_port()) as upstream:
        models = write_models(tmp_path / "models.yaml", upstream.url)
        cfg = settings.model_copy(update={"llm_models_file": models})
        with run_server(cfg) as server:
            yield Gateway(server, upstream, key)


def ledger(settings: Settings) -> list[UsageRecord]:
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_factory(engine)() as s:
            return list(s.scalars(select(UsageRecord).order_by(UsageRecord.id)))
    finally:
        engine.dispose()


def cost(tokens_in: int, tokens_out: int) -> Decimal:
    return (IN_PRICE * tokens_in + OUT_PRICE * tokens_out) / 1000


MESSAGES: Any = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello to Ankara please"},
]


def test_chat_completions_usage_headers_and_ledger(settings: Settings, tmp_path: Path) -> None:
    with open_gateway(settings, tmp_path, requests_per_minute=100, tokens_per_day=10_000) as gw:
        raw = gw.client().chat.completions.with_raw_response.create(
            model="chat-small", messages=MESSAGES, max_tokens=3
        )
        completion = raw.parse()
        request_id = raw.headers["x-request-id"]
        assert raw.headers["x-ratelimit-limit-requests"] == "100"
        assert raw.headers["x-ratelimit-remaining-requests"] == "99"
        assert raw.headers["x-ratelimit-limit-tokens"] == "10000"
    assert completion.model == "chat-small"  # the public name, not the upstream's
    assert completion.choices[0].message.content == "".join(WORDS[:3])
    prompt = chat_prompt_tokens(MESSAGES)
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (prompt, 3)
    [row] = ledger(settings)  # written after the server stopped: the shutdown flush
    assert (row.request_id, row.tenant_id, row.model) == (request_id, "acme", "chat-small")
    assert (row.backend, row.status, row.status_code) == ("openai-compatible", "ok", 200)
    assert (row.tokens_in, row.tokens_out) == (prompt, 3)
    assert row.cost == cost(prompt, 3) and row.currency == "USD"
    assert row.latency_ms > 0


def test_streaming_sends_usage_last_only_when_asked(settings: Settings, tmp_path: Path) -> None:
    with open_gateway(settings, tmp_path, tokens_per_day=10_000) as gw:
        client = gw.client()
        with_usage = list(
            client.chat.completions.create(
                model="chat-small",
                messages=MESSAGES,
                max_tokens=4,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        without = list(
            client.chat.completions.create(
                model="chat-small", messages=MESSAGES, max_tokens=2, stream=True
            )
        )
        text_stream = list(
            client.completions.create(
                model="chat-small", prompt="one two three", max_tokens=3, stream=True
            )
        )
    text = "".join(c.choices[0].delta.content or "" for c in with_usage if c.choices)
    assert text == "".join(WORDS[:4])
    assert {c.model for c in with_usage} == {"chat-small"}
    final = with_usage[-1]
    assert final.choices == [] and final.usage is not None
    prompt = chat_prompt_tokens(MESSAGES)
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (prompt, 4)
    assert all(c.usage is None for c in with_usage[:-1])
    assert all(c.usage is None for c in without) and len(without) == 3  # 2 words + finish
    assert "".join(c.choices[0].text for c in text_stream) == "".join(WORDS[:3])
    rows = ledger(settings)
    assert [(r.tokens_in, r.tokens_out, r.status) for r in rows] == [
        (prompt, 4, "ok"),
        (prompt, 2, "ok"),  # billed from the usage chunk the client never saw
        (3, 3, "ok"),
    ]
    assert [r.cost for r in rows] == [cost(prompt, 4), cost(prompt, 2), cost(3, 3)]


def test_completions_embeddings_and_models(settings: Settings, tmp_path: Path) -> None:
    with open_gateway(settings, tmp_path) as gw:
        client = gw.client()
        text = client.completions.create(model="chat-small", prompt="one two three", max_tokens=2)
        vectors = client.embeddings.create(model="embed-small", input=["a b", "c d e"])
        listed = client.models.list()
    assert text.choices[0].text == "".join(WORDS[:2]) and text.model == "chat-small"
    assert text.usage is not None and text.usage.prompt_tokens == 3
    assert [d.index for d in vectors.data] == [0, 1] and len(vectors.data[1].embedding) == 4
    assert vectors.usage.prompt_tokens == 5 and vectors.model == "embed-small"
    assert sorted(m.id for m in listed.data) == ["broken", "chat-small", "embed-small", "slow-chat"]
    rows = ledger(settings)
    assert [(r.model, r.tokens_in, r.tokens_out) for r in rows] == [
        ("chat-small", 3, 2),
        ("embed-small", 5, 0),
    ]
    assert rows[1].cost == cost(5, 0)


def test_errors_in_openai_shape(settings: Settings, tmp_path: Path) -> None:
    with open_gateway(settings, tmp_path) as gw:
        client = gw.client()
        with pytest.raises(openai.NotFoundError) as missing:
            client.chat.completions.create(model="no-such-model", messages=MESSAGES)
        with pytest.raises(openai.AuthenticationError) as bad_key:
            gw.client("psk_" + "a" * 12 + "_" + "b" * 43).models.list()
        with pytest.raises(openai.AuthenticationError):
            gw.client("not-a-key").chat.completions.create(model="chat-small", messages=MESSAGES)
        with pytest.raises(openai.BadRequestError) as malformed:
            client.chat.completions.create(model="chat-small", messages=[])
        with pytest.raises(openai.BadRequestError) as wrong_kind:
            client.embeddings.create(model="chat-small", input="hi")
    for exc, status, code in [
        (missing.value, 404, "model_not_found"),
        (bad_key.value, 401, "invalid_api_key"),
        (malformed.value, 400, "invalid_input"),
        (wrong_kind.value, 400, "unsupported_model"),
    ]:
        assert exc.status_code == status
        assert exc.code == code
        assert isinstance(exc.body, dict) and set(exc.body) == {"message", "type", "code", "param"}
    assert malformed.value.body["param"] == "messages"  # type: ignore[index]
    assert ledger(settings) == []  # nothing reached a backend: nothing to bill


def test_rate_limit_admits_exactly_n_of_m(settings: Settings, tmp_path: Path) -> None:
    async def fire(gw: Gateway, m: int) -> list[Any]:
        async with gw.async_client() as client:
            calls = [
                client.chat.completions.create(model="chat-small", messages=MESSAGES, max_tokens=1)
                for _ in range(m)
            ]
            return await asyncio.gather(*calls, return_exceptions=True)

    with open_gateway(settings, tmp_path, requests_per_minute=7) as gw:
        results = asyncio.run(fire(gw, 12))
        assert gw.upstream.hits["tiny-chat"] == 7
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(refused) == 5 and len(results) - len(refused) == 7
    assert all(r.code == "rate_limit_exceeded" for r in refused)
    headers = refused[0].response.headers
    assert int(headers["retry-after"]) >= 1 and headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-limit-requests"] == "7"
    statuses = sorted(r.status_code for r in ledger(settings))
    assert statuses == [200] * 7 + [429] * 5


def test_quota_never_overspent_by_50_concurrent_requests(
    settings: Settings, tmp_path: Path
) -> None:
    quota = 2_000

    async def fire(gw: Gateway) -> list[Any]:
        async with gw.async_client() as client:

            async def one() -> Any:
                try:
                    return await client.chat.completions.create(
                        model="slow-chat", messages=MESSAGES, max_tokens=100
                    )
                except openai.RateLimitError as exc:
                    return exc

            return await asyncio.gather(*(one() for _ in range(50)))

    with open_gateway(settings, tmp_path, tokens_per_day=quota) as gw:
        results = asyncio.run(fire(gw))
    ok = [r for r in results if not isinstance(r, openai.RateLimitError)]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert ok and refused and len(ok) + len(refused) == 50
    assert all(r.code == "insufficient_quota" for r in refused)
    each = chat_prompt_tokens(MESSAGES) + 100
    assert all(r.usage.total_tokens == each for r in ok)
    rows = ledger(settings)
    assert len(rows) == 50
    spent = sum(r.tokens_in + r.tokens_out for r in rows)
    assert spent == len(ok) * each <= quota


def test_upstream_5xx_is_retried_then_502_and_the_breaker_opens(
    settings: Settings, tmp_path: Path
) -> None:
    with open_gateway(settings, tmp_path, tokens_per_day=1_000) as gw:
        client = gw.client()
        for _ in range(2):
            with pytest.raises(openai.InternalServerError) as failed:
                client.chat.completions.create(model="broken", messages=MESSAGES, max_tokens=5)
            assert failed.value.status_code == 502
            assert failed.value.code == "upstream_unavailable"
        assert gw.upstream.hits["fail-500"] == 6  # 1 try + 2 retries, twice
        with pytest.raises(openai.InternalServerError) as paused:
            client.chat.completions.create(model="broken", messages=MESSAGES, max_tokens=5)
        assert paused.value.status_code == 503 and paused.value.code == "upstream_circuit_open"
        assert gw.upstream.hits["fail-500"] == 6  # the open breaker did not call out
        raw = client.chat.completions.with_raw_response.create(
            model="chat-small", messages=MESSAGES, max_tokens=1
        )
        # failed calls settled to 0 tokens: only this request's reservation is held now
        remaining = int(raw.headers["x-ratelimit-remaining-tokens"])
        assert remaining > 1_000 - 300
    rows = ledger(settings)
    assert [(r.status_code, r.tokens_in, r.tokens_out) for r in rows[:3]] == [
        (502, 0, 0),
        (502, 0, 0),
        (503, 0, 0),
    ]
    assert rows[0].cost == 0 and rows[3].status_code == 200


def test_a_revoked_key_is_refused_after_one_refresh(settings: Settings, tmp_path: Path) -> None:
    with open_gateway(settings, tmp_path) as gw:
        client = gw.client()
        assert client.models.list().data
        engine = make_engine(settings.resolved_database_url)
        try:
            with transaction(session_factory(engine)) as s:
                api_keys.revoke_key(s, gw.key[:16])
        finally:
            engine.dispose()
        time.sleep(3 * settings.registry_refresh_s)
        with pytest.raises(openai.AuthenticationError):
            client.models.list()


def test_a_client_leaving_mid_stream_is_billed_its_whole_reservation(
    settings: Settings, tmp_path: Path
) -> None:
    """No usage arrived, so the quota keeps the reservation (never undercounted) and the
    ledger row says the stream was incomplete."""
    quota = 5_000
    with open_gateway(settings, tmp_path, tokens_per_day=quota) as gw:
        headers = {"authorization": f"Bearer {gw.key}"}
        body = {"model": "slow-chat", "messages": MESSAGES, "max_tokens": 60, "stream": True}
        with (
            gw.server.client() as http,
            http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response,
        ):
            assert response.status_code == 200
            first = next(response.iter_lines())
            assert first.startswith("data: {") and '"slow-chat"' in first
            held = quota - int(response.headers["x-ratelimit-remaining-tokens"])
        time.sleep(0.3)  # the gateway notices the disconnect at its next write
        raw = gw.client().chat.completions.with_raw_response.create(
            model="chat-small", messages=MESSAGES, max_tokens=1
        )
        now_held = quota - int(raw.headers["x-ratelimit-remaining-tokens"])
        assert now_held > held + 100  # the cut stream's reservation (~290) still counts
    rows = ledger(settings)
    assert [(r.model, r.status, r.status_code, r.tokens_out) for r in rows] == [
        ("slow-chat", "incomplete", 499, 0),
        ("chat-small", "ok", 200, 1),
    ]


def test_a_lone_surrogate_in_a_prompt_is_not_a_server_error(
    settings: Settings, tmp_path: Path
) -> None:
    # "\\ud800" is valid JSON but not encodable text (the SDK refuses to send it, so raw
    # httpx does): the guard and the upstream hop refuse it with a 400, never a 500.
    body = b'{"model":"chat-small","messages":[{"role":"user","content":"merhaba \\ud800 d"}]}'
    with open_gateway(settings, tmp_path) as gw:
        response = httpx.post(
            f"{gw.server.url}/v1/chat/completions",
            content=body,
            headers={"authorization": f"Bearer {gw.key}", "content-type": "application/json"},
        )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and "surrogate" in error["message"]
