"""The Anthropic Messages backend end to end, with the official ``openai`` SDK as the client.

A real gateway (uvicorn, SQLite, in-process limiter, batched ledger) in front of a real HTTP
server on loopback speaking Anthropic's wire format (``tests.fake_anthropic``): the gateway
must translate requests, answers, streams, usage and errors both ways.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from paramstack.backends.anthropic_wire import StreamTranslator, to_messages_request, usage_of
from paramstack.config import Settings
from paramstack.errors import InvalidInput, UpstreamError
from paramstack.registry import api_keys, tenants
from paramstack.registry.api_keys import KeySpec
from paramstack.registry.key_material import resolve_pepper
from paramstack.registry.tenants import TenantSpec
from paramstack.store.engine import make_engine, session_factory, transaction
from tests.conftest import LiveServer, free_port, run_server
from tests.fake_anthropic import API_KEY, CACHED, WORDS, Anthropic, input_tokens, run_anthropic
from tests.test_openai_gateway import ledger

KEY_ENV = "PS_TEST_ANTHROPIC_KEY"
IN_PRICE, OUT_PRICE = Decimal("3"), Decimal("15")  # per 1k tokens
MESSAGES: Any = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello to Ankara please"},
]


@dataclass
class Gateway:
    server: LiveServer
    anthropic: Anthropic
    key: str

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.server.url}/v1", api_key=self.key, max_retries=0)


def create_tenant(
    settings: Settings, prices: dict[str, tuple[Decimal, Decimal]], **limits: int
) -> str:
    engine = make_engine(settings.resolved_database_url)
    try:
        with transaction(session_factory(engine)) as s:
            tenants.create_tenant(s, TenantSpec(id="acme", name="Acme", **limits))  # type: ignore[arg-type]
            for model, (price_in, price_out) in prices.items():
                tenants.set_price(s, "acme", model, price_in, price_out)
            return api_keys.create_key(s, "acme", KeySpec(), resolve_pepper(settings)).plaintext
    finally:
        engine.dispose()


def anthropic_models(url: str) -> list[dict[str, Any]]:
    route = {"backend": "anthropic", "base_url": url, "api_key_env": KEY_ENV}
    fast = {"max_retries": 2, "backoff_s": 0.01, "breaker_failures": 2, "breaker_reset_s": 60}
    return [
        {**route, "name": "claude", "upstream_model": "claude-test"},
        {**route, "name": "claude-cached", "upstream_model": "cached"},
        {**route, "name": "claude-bad", "upstream_model": "bad-request"},
        {**route, "name": "claude-broken-stream", "upstream_model": "stream-error"},
        {**route, "name": "claude-overloaded", "upstream_model": "overloaded", **fast},
        {
            **route,
            "name": "claude-wrong-key",
            "upstream_model": "claude-test",
            "api_key_env": "PS_TEST_WRONG_KEY",
        },
    ]


@contextmanager
def open_gateway(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Gateway]:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    monkeypatch.setenv("PS_TEST_WRONG_KEY", "sk-ant-wrong")
    key = create_tenant(settings, {"claude": (IN_PRICE, OUT_PRICE)}, tokens_per_day=10_000)
    with run_anthropic(free_port()) as upstream:
        path = tmp_path / "models.yaml"
        path.write_text(yaml.safe_dump({"models": anthropic_models(upstream.url)}))
        with run_server(settings.model_copy(update={"llm_models_file": path})) as server:
            yield Gateway(server, upstream, key)


def test_chat_is_translated_both_ways_and_billed(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_gateway(settings, tmp_path, monkeypatch) as gw:
        client = gw.client()
        cut = client.chat.completions.create(
            model="claude", messages=MESSAGES, max_tokens=3, temperature=0.2, stop="END", user="u-1"
        )
        whole = client.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "hi"}]
        )
        cached = client.chat.completions.create(
            model="claude-cached", messages=[{"role": "user", "content": "a b"}], max_tokens=2
        )
    sent = gw.anthropic.seen[0]
    assert sent["system"] == "You are terse."  # lifted out of the messages
    assert sent["messages"] == [{"role": "user", "content": "Say hello to Ankara please"}]
    assert (sent["max_tokens"], sent["temperature"], sent["stop_sequences"]) == (3, 0.2, ["END"])
    assert sent["metadata"] == {"user_id": "u-1"} and sent["model"] == "claude-test"
    assert gw.anthropic.seen[1]["max_tokens"] == 1024  # the model's bound, Anthropic needs one
    assert cut.model == "claude" and cut.choices[0].message.content == "".join(WORDS[:3])
    assert cut.choices[0].finish_reason == "length"  # stop_reason max_tokens
    assert whole.choices[0].finish_reason == "stop" and whole.choices[0].message.content == "".join(
        WORDS
    )
    prompt = input_tokens(sent)
    assert cut.usage is not None and (cut.usage.prompt_tokens, cut.usage.completion_tokens) == (
        prompt,
        3,
    )
    assert (
        cached.usage is not None and cached.usage.prompt_tokens == 2 + CACHED
    )  # cache reads count
    rows = ledger(settings)
    assert [(r.model, r.backend, r.status, r.tokens_in, r.tokens_out) for r in rows] == [
        ("claude", "anthropic", "ok", prompt, 3),
        ("claude", "anthropic", "ok", 1, len(WORDS)),
        ("claude-cached", "anthropic", "ok", 2 + CACHED, 2),
    ]
    assert rows[0].cost == (IN_PRICE * prompt + OUT_PRICE * 3) / 1000


def test_streams_become_openai_chunks_with_usage_last(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_gateway(settings, tmp_path, monkeypatch) as gw:
        client = gw.client()
        chunks = list(
            client.chat.completions.create(
                model="claude",
                messages=MESSAGES,
                max_tokens=4,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        without = list(
            client.chat.completions.create(
                model="claude", messages=MESSAGES, max_tokens=2, stream=True
            )
        )
    assert gw.anthropic.seen[0]["stream"] is True
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(WORDS[:4]) and {c.model for c in chunks} == {"claude"}
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    final = chunks[-1]
    prompt = input_tokens(gw.anthropic.seen[0])
    assert final.choices == [] and final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (prompt, 4)
    assert all(c.usage is None for c in chunks[:-1]) and all(c.usage is None for c in without)
    rows = ledger(settings)
    assert [(r.status, r.tokens_in, r.tokens_out) for r in rows] == [
        ("ok", prompt, 4),
        ("ok", prompt, 2),
    ]


def test_errors_map_to_openai_errors(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_gateway(settings, tmp_path, monkeypatch) as gw:
        client = gw.client()
        with pytest.raises(openai.BadRequestError) as rejected:
            client.chat.completions.create(model="claude-bad", messages=MESSAGES)
        with pytest.raises(openai.InternalServerError) as wrong_key:
            client.chat.completions.create(model="claude-wrong-key", messages=MESSAGES)
        with pytest.raises(openai.BadRequestError) as hot:
            client.chat.completions.create(model="claude", messages=MESSAGES, temperature=1.5)
        with pytest.raises(openai.BadRequestError) as tools:
            client.chat.completions.create(
                model="claude",
                messages=MESSAGES,
                tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
            )
        with pytest.raises(openai.BadRequestError) as no_completions:
            client.completions.create(model="claude", prompt="hi")
        stream = client.chat.completions.create(
            model="claude-broken-stream", messages=MESSAGES, stream=True
        )
        received: list[Any] = []
        with pytest.raises(openai.APIError) as in_band:
            received.extend(stream)  # the SDK raises on the in-band error event
    assert (rejected.value.status_code, rejected.value.code) == (400, "upstream_rejected")
    assert "invalid_request_error" in rejected.value.message
    assert "too long" not in rejected.value.message  # upstream messages may quote the prompt
    assert (wrong_key.value.status_code, wrong_key.value.code) == (502, "upstream_auth")
    assert (hot.value.code, hot.value.param) == ("invalid_input", "temperature")
    assert tools.value.param == "tools"
    assert (no_completions.value.status_code, no_completions.value.code) == (
        400,
        "unsupported_model",
    )
    # the stream had started (HTTP 200, the role chunk arrived): the error came in-band
    assert received and received[0].choices[0].delta.role == "assistant"
    assert "overloaded_error" in in_band.value.message
    assert gw.anthropic.hits["bad-request"] == 1 and gw.anthropic.hits["claude-test"] == 0
    rows = ledger(settings)
    assert [(r.model, r.status_code, r.tokens_in) for r in rows] == [
        ("claude-bad", 400, 0),
        ("claude-wrong-key", 502, 0),
        ("claude", 400, 0),
        ("claude", 400, 0),
        ("claude-broken-stream", 502, 0),
    ]


def test_overloaded_is_retried_then_the_breaker_opens(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_gateway(settings, tmp_path, monkeypatch) as gw:
        client = gw.client()
        for _ in range(2):
            with pytest.raises(openai.InternalServerError) as failed:
                client.chat.completions.create(model="claude-overloaded", messages=MESSAGES)
            assert (failed.value.status_code, failed.value.code) == (502, "upstream_unavailable")
        assert gw.anthropic.hits["overloaded"] == 6  # 1 try + 2 retries of the 529, twice
        with pytest.raises(openai.InternalServerError) as paused:
            client.chat.completions.create(model="claude-overloaded", messages=MESSAGES)
        assert (paused.value.status_code, paused.value.code) == (503, "upstream_circuit_open")
        assert gw.anthropic.hits["overloaded"] == 6
        assert client.chat.completions.create(model="claude", messages=MESSAGES).choices
    assert [r.status_code for r in ledger(settings)] == [502, 502, 503, 200]


def test_wire_translation_edges() -> None:
    """Shapes a client can send that the fake server never sees, checked without a network."""
    merged = to_messages_request(
        {
            "model": "m",
            "max_completion_tokens": 7,
            "messages": [
                {"role": "developer", "content": "A"},
                {"role": "system", "content": [{"type": "text", "text": "B"}]},
                {"role": "user", "content": "x"},
                {"role": "user", "content": [{"type": "text", "text": "y"}]},
                {"role": "assistant", "content": "z"},
            ],
        }
    )
    assert merged["system"] == "A\n\nB" and merged["max_tokens"] == 7
    assert merged["messages"] == [
        {"role": "user", "content": "x\n\ny"},
        {"role": "assistant", "content": "z"},
    ]
    for bad, param in [
        ({"messages": [{"role": "tool", "content": "r"}]}, "messages"),
        ({"messages": [{"role": "system", "content": "only"}]}, "messages"),
        ({"n": 2}, "n"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages"),
    ]:
        request = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}]}
        with pytest.raises(InvalidInput) as err:
            to_messages_request({**request, **bad})
        assert err.value.param == param
    usage = usage_of({"input_tokens": 5, "cache_creation_input_tokens": 2, "output_tokens": 1})
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (7, 1)
    assert usage_of({"output_tokens": 1}) is None
    translator = StreamTranslator()
    assert translator.feed({"type": "ping"}) == []
    start = {"usage": {"input_tokens": 5, "cache_read_input_tokens": 4, "output_tokens": 1}}
    translator.feed({"type": "message_start", "message": {"id": "msg_9", **start}})
    translator.feed({"type": "message_delta", "delta": {}, "usage": {"output_tokens": 6}})
    translator.feed({"type": "message_delta", "delta": {}, "usage": {"input_tokens": 5}})
    [final] = translator.feed({"type": "message_stop"})
    assert final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.total_tokens) == (9, 15)
    assert final.body["id"] == "msg_9" and final.body["choices"] == []
    with pytest.raises(UpstreamError, match="api_error"):
        translator.feed({"type": "error", "error": {"type": "api_error", "message": "secret"}})
