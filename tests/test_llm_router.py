"""The hybrid router end to end, with the official ``openai`` SDK as the client.

Two real upstreams on loopback: an OpenAI-compatible server standing for the local model
(``tests.fake_upstream``) and an Anthropic Messages server standing for the external API
(``tests.fake_anthropic``); their hit counters show which one received each call. The ledger
rows (written by the batched writer, read after shutdown) must carry the whole decision.
"""

# ruff: noqa: RUF001  (Turkish text: the dotless i is the point)

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
import yaml

from paramstack.config import Settings
from paramstack.errors import InvalidInput
from paramstack.gateway.complexity import ComplexityClassifier, ComplexityConfig
from paramstack.gateway.llm_router import RouterTable, sticky_pick
from paramstack.gateway.model_table import ModelSpec, ModelTable
from paramstack.gateway.router_spec import RouterSpec
from paramstack.rag.index import RagIndex
from paramstack.rag.settings import store_url
from paramstack.rag.stores.protocol import open_store
from paramstack.store.tenant_tables import UsageRecord
from tests.conftest import LiveServer, free_port, run_server
from tests.fake_anthropic import API_KEY, Anthropic, run_anthropic
from tests.fake_anthropic import WORDS as CLAUDE_WORDS
from tests.fake_upstream import WORDS as LOCAL_WORDS
from tests.fake_upstream import Upstream, run_upstream
from tests.rag_support import HOSPITAL_A, documents
from tests.test_anthropic_upstream import KEY_ENV, anthropic_models, create_tenant
from tests.test_complexity import LEGAL_TR
from tests.test_openai_gateway import ledger
from tests.test_openai_metrics import scrape, value

QUOTA = 50_000
PRICES = {
    "local": (Decimal("0.1"), Decimal("0.2")),
    "claude": (Decimal("3"), Decimal("15")),
}
GREETING: Any = [{"role": "user", "content": "Merhaba, nasılsın?"}]
LEGAL: Any = [
    {"role": "system", "content": "Hukuk asistanısın."},
    {"role": "user", "content": LEGAL_TR},
]
MEDICAL: Any = [
    {
        "role": "user",
        "content": "What are the side effects of metformin for a diabetes patient, and the dosage?",
    }
]


@dataclass
class Gateway:
    server: LiveServer
    local: Upstream
    external: Anthropic
    key: str

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.server.url}/v1", api_key=self.key, max_retries=0)


def models_file(path: Path, local_url: str, anthropic_url: str) -> Path:
    local = {"backend": "openai-compatible", "base_url": local_url, "max_output_tokens": 50}
    fast = {"max_retries": 2, "backoff_s": 0.01}
    models = [
        {**local, "name": "local", "upstream_model": "tiny-chat"},
        {**local, "name": "local-500", "upstream_model": "fail-500", **fast},
        # the fake's "slow" model answers after 50 ms: far past this timeout
        {**local, "name": "local-hang", "upstream_model": "slow", "timeout_s": 0.01},
        {
            **local,
            "name": "local-fragile",
            "upstream_model": "fail-500",
            "max_retries": 0,
            "breaker_failures": 1,
            "breaker_reset_s": 60,
        },
        *anthropic_models(anthropic_url),
    ]
    medium = {"local": 1, "claude": 1}
    routers = [
        {"name": "auto", "simple": "local", "medium": medium, "complex": "claude"},
        {"name": "auto-500", "simple": "local-500", "medium": medium, "complex": "claude"},
        {"name": "auto-hang", "simple": "local-hang", "medium": medium, "complex": "claude"},
        {"name": "auto-fragile", "simple": "local-fragile", "medium": medium, "complex": "claude"},
        {
            "name": "auto-midstream",
            "simple": "claude-broken-stream",
            "medium": medium,
            "complex": "claude",
            "fallback": ["local"],
        },
    ]
    path.write_text(yaml.safe_dump({"models": models, "routers": routers}, sort_keys=False))
    return path


@contextmanager
def open_gateway(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Gateway]:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    monkeypatch.setenv("PS_TEST_WRONG_KEY", "sk-ant-wrong")
    key = create_tenant(settings, PRICES, tokens_per_day=QUOTA)
    with run_upstream(free_port()) as local, run_anthropic(free_port()) as external:
        path = models_file(tmp_path / "models.yaml", local.url, external.url)
        with run_server(settings.model_copy(update={"llm_models_file": path})) as server:
            yield Gateway(server, local, external, key)


def routing(row: UsageRecord) -> dict[str, Any]:
    assert row.routing is not None
    parsed: dict[str, Any] = json.loads(row.routing)["router"]
    return parsed


def test_auto_sends_a_greeting_local_and_a_legal_analysis_out(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_gateway(settings, tmp_path, monkeypatch) as gw:
        client = gw.client()
        assert "auto" in {m.id for m in client.models.list().data}
        hello = client.chat.completions.create(model="auto", messages=GREETING, max_tokens=3)
        assert (gw.local.hits["tiny-chat"], gw.external.hits.total()) == (1, 0)
        legal = client.chat.completions.create(model="auto", messages=LEGAL, max_tokens=4)
        assert (gw.local.hits["tiny-chat"], gw.external.hits["claude-test"]) == (1, 1)
    assert hello.model == "local" and hello.choices[0].message.content == "".join(LOCAL_WORDS[:3])
    assert legal.model == "claude" and legal.choices[0].message.content == "".join(CLAUDE_WORDS[:4])
    first, second = ledger(settings)
    assert (first.model, first.backend, second.model, second.backend) == (
        "local",
        "openai-compatible",
        "claude",
        "anthropic",
    )
    classifier = ComplexityClassifier(ComplexityConfig.from_yaml())
    for row, messages, limit in [(first, GREETING, 3), (second, LEGAL, 4)]:
        decision = routing(row)
        expected = classifier.classify(messages)
        assert (decision["score"], decision["band"]) == (expected.score, expected.band)
        assert decision["chosen"] == row.model and decision["router"] == "auto"
        assert [a["model"] for a in decision["attempts"]] == [row.model]
        assert decision["attempts"][0]["status"] == "ok"
        assert decision["fallback_reason"] is None and decision["forced"] is None
        tokens = expected.context_tokens
        estimate = {
            name: str((p_in * tokens + p_out * limit) / 1000)
            for name, (p_in, p_out) in PRICES.items()
        }
        assert {k: Decimal(v) for k, v in decision["estimated_cost"].items() if v} == {
            k: Decimal(v) for k, v in estimate.items()
        }
        assert decision["currency"] == "USD"
    assert routing(first)["band"] == "simple" and routing(second)["band"] == "complex"
    assert second.cost == (Decimal(3) * second.tokens_in + Decimal(15) * second.tokens_out) / 1000


def test_the_route_header_forces_a_target_without_fallback(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def force(target: str) -> dict[str, str]:
        return {"x-paramstack-route": target}

    with open_gateway(settings, tmp_path, monkeypatch) as gw:
        client = gw.client()
        local = client.chat.completions.create(
            model="auto", messages=LEGAL, max_tokens=2, extra_headers=force("local")
        )
        external = client.chat.completions.create(
            model="auto", messages=GREETING, max_tokens=2, extra_headers=force("external")
        )
        named = client.chat.completions.create(
            model="auto", messages=GREETING, max_tokens=2, extra_headers=force("claude-cached")
        )
        with pytest.raises(openai.BadRequestError) as unknown:
            client.chat.completions.create(
                model="auto", messages=GREETING, extra_headers=force("nope")
            )
        with pytest.raises(openai.BadRequestError) as not_chat:
            client.completions.create(model="auto", prompt="hi")
        with pytest.raises(openai.InternalServerError) as no_fallback:
            client.chat.completions.create(
                model="auto-500", messages=GREETING, extra_headers=force("local")
            )
        assert gw.local.hits["fail-500"] == 3 and gw.external.hits["claude-test"] == 1
    assert (local.model, external.model, named.model) == ("local", "claude", "claude-cached")
    assert (unknown.value.code, unknown.value.param) == ("invalid_route", "x-paramstack-route")
    assert no_fallback.value.code == "upstream_unavailable"
    assert (not_chat.value.code, not_chat.value.param) == ("unsupported_model", "model")
    rows = ledger(settings)
    assert [(r.model, routing(r)["forced"], r.status_code) for r in rows] == [
        ("local", "local", 200),
        ("claude", "external", 200),
        ("claude-cached", "claude-cached", 200),
        ("local-500", "local", 502),
    ]
    assert routing(rows[0])["band"] == "complex"  # scored, but the header won
    assert set(routing(rows[2])["estimated_cost"]) >= {"local", "claude", "claude-cached"}
    assert [a["model"] for a in routing(rows[3])["attempts"]] == ["local-500"]


def test_fallback_to_external_on_500_and_on_timeout_with_one_exact_settle(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_gateway(settings, tmp_path, monkeypatch) as gw:
        client = gw.client()
        after_500 = client.chat.completions.create(
            model="auto-500", messages=GREETING, max_tokens=3
        )
        assert gw.local.hits["fail-500"] == 3  # the local backend's own 2 retries first
        after_hang = client.chat.completions.create(
            model="auto-hang", messages=GREETING, max_tokens=3
        )
        assert gw.local.hits["slow"] == 1  # a timeout is not retried (it may still be billed)
        streamed = list(
            client.chat.completions.create(
                model="auto-500",
                messages=GREETING,
                max_tokens=3,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        assert gw.external.hits["claude-test"] == 3
        # every fallback settled once, to the answering model's usage: the quota now holds
        # exactly their tokens plus this probe's reservation (its bound, computed here)
        body = orjson.dumps({"model": "local", "messages": GREETING, "max_tokens": 1})
        headers = {"authorization": f"Bearer {gw.key}", "content-type": "application/json"}
        with gw.server.client() as http:
            probe = http.post("/v1/chat/completions", content=body, headers=headers)
        assert probe.status_code == 200
        remaining = int(probe.headers["x-ratelimit-remaining-tokens"])
    for answer in (after_500, after_hang):
        assert answer.model == "claude" and answer.choices[0].message.content == "".join(
            CLAUDE_WORDS[:3]
        )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "".join(
        CLAUDE_WORDS[:3]
    )
    assert streamed[-1].usage is not None and {c.model for c in streamed} == {"claude"}
    rows = ledger(settings)
    assert [(r.model, r.backend, r.status, r.status_code) for r in rows[:3]] == [
        ("claude", "anthropic", "ok", 200)
    ] * 3
    reasons = [routing(r)["fallback_reason"] for r in rows[:3]]
    assert reasons == ["upstream_unavailable", "upstream_timeout", "upstream_unavailable"]
    for row, first in zip(rows[:3], ["local-500", "local-hang", "local-500"], strict=True):
        decision = routing(row)
        assert decision["chosen"] == first and decision["band"] == "simple"
        assert [a["model"] for a in decision["attempts"]] == [first, "claude"]
        assert decision["attempts"][0]["status"] == reasons[rows.index(row)]
        assert decision["attempts"][1]["status"] == ("started" if row is rows[2] else "ok")
        assert row.tokens_in > 0 and row.tokens_out == 3
    used = sum(r.tokens_in + r.tokens_out for r in rows[:3])
    reservation = len(body) + 8 * len(GREETING) + 8 + 1  # token_budget.chat_bound + max_tokens
    assert remaining == QUOTA - used - reservation


def test_an_open_circuit_falls_back_without_calling_the_local_upstream(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_gateway(settings, tmp_path, monkeypatch) as gw:
        client = gw.client()
        answers = [
            client.chat.completions.create(model="auto-fragile", messages=GREETING, max_tokens=2)
            for _ in range(2)
        ]
        assert gw.local.hits["fail-500"] == 1  # the first failure opened the breaker
    assert [a.model for a in answers] == ["claude", "claude"]
    reasons = [routing(r)["fallback_reason"] for r in ledger(settings)]
    assert reasons == ["upstream_unavailable", "upstream_circuit_open"]


def test_no_fallback_once_a_stream_has_started(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_gateway(settings, tmp_path, monkeypatch) as gw:
        stream = gw.client().chat.completions.create(
            model="auto-midstream", messages=GREETING, stream=True
        )
        received: list[Any] = []
        with pytest.raises(openai.APIError) as in_band:
            received.extend(stream)
        assert gw.external.hits["stream-error"] == 1
        assert gw.local.hits.total() == 0  # the fallback target was never called
    assert received and received[0].choices[0].delta.role == "assistant"
    assert "overloaded_error" in in_band.value.message
    [row] = ledger(settings)
    assert (row.model, row.status, row.status_code) == (
        "claude-broken-stream",
        "upstream_error",
        502,
    )
    decision = routing(row)
    assert decision["fallback_reason"] is None
    assert [a["model"] for a in decision["attempts"]] == ["claude-broken-stream"]


def test_the_medium_split_is_sticky_per_user_and_metrics_count_decisions(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = [f"user-{i}" for i in range(10)]
    with open_gateway(settings, tmp_path, monkeypatch) as gw:
        client = gw.client()
        for _ in range(2):
            for user in users:
                client.chat.completions.create(
                    model="auto", messages=MEDICAL, max_tokens=1, user=user
                )
        client.chat.completions.create(model="auto", messages=GREETING, max_tokens=1)
        client.chat.completions.create(model="auto-500", messages=GREETING, max_tokens=1)
        with gw.server.client() as http:
            samples = scrape(http.get("/metrics").text)
    rows = ledger(settings)
    assert all(routing(r)["band"] == "medium" for r in rows[:20])
    first, again = rows[:10], rows[10:20]
    assert [r.model for r in first] == [r.model for r in again]  # same user, same arm
    assert {r.model for r in first} == {"local", "claude"}  # both arms are used
    expected = {u: sticky_pick({"local": 1, "claude": 1}, f"auto:{u}") for u in users}
    assert [r.model for r in first] == [expected[u] for u in users]
    medium_local = sum(r.model == "local" for r in rows[:20])
    decisions = "paramstack_llm_route_decisions_total"
    assert value(samples, decisions, router="auto", band="medium", target="local") == medium_local
    assert (
        value(samples, decisions, router="auto", band="medium", target="claude")
        == 20 - medium_local
    )
    assert value(samples, decisions, router="auto", band="simple", target="local") == 1
    assert value(samples, decisions, router="auto-500", band="simple", target="local-500") == 1
    fallbacks = "paramstack_llm_route_fallbacks_total"
    assert value(samples, fallbacks, router="auto-500", reason="upstream_unavailable") == 1
    assert value(samples, "paramstack_llm_requests_total", model="claude", status="200") == (
        20 - medium_local + 1
    )


def test_sticky_pick_follows_the_weights() -> None:
    picks = [sticky_pick({"a": 3, "b": 1}, f"r:{i}") for i in range(4000)]
    assert 0.72 < picks.count("a") / len(picks) < 0.78
    assert sticky_pick({"a": 3, "b": 1}, "r:7") == picks[7]  # deterministic


def test_bad_router_configs_are_refused() -> None:
    spec = ModelSpec(name="m", base_url="http://127.0.0.1:9/v1")
    embed = ModelSpec(name="e", base_url="http://127.0.0.1:9/v1", kind="embedding")
    for router, message in [
        (RouterSpec(name="auto", simple="m", medium={"m": 1}, complex="missing"), "'missing'"),
        (
            RouterSpec(name="auto", simple="m", medium={"e": 1}, complex="m"),
            "does not support chat",
        ),
        (RouterSpec(name="m", simple="m", medium={"m": 1}, complex="m"), "clashes"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            RouterTable(ModelTable([spec, embed], [router]), None)
    with pytest.raises(ValueError, match="positive"):
        RouterSpec(name="auto", simple="m", medium={"m": 0}, complex="m")


def test_the_shipped_hybrid_example_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-example")
    table = ModelTable.from_file(Path("configs/gateway/models-hybrid.yaml"))
    try:
        router = RouterTable(table, None).get("auto")
        assert router is not None
        assert router.routes["claude-sonnet"].backend.kind == "anthropic"
        assert router.routes["claude-haiku"].backend is router.routes["claude-sonnet"].backend
        assert router.spec.fallback_models == ["claude-haiku", "claude-sonnet"]
        assert router.classifier.config.thresholds.complex == 50
    finally:
        asyncio.run(table.aclose())


def test_a_routed_model_answers_with_retrieval_and_citations(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(store_url(settings.home))
    RagIndex(store, "acme").ingest(documents(HOSPITAL_A))
    store.close()
    with open_gateway(settings, tmp_path, monkeypatch) as gw:
        client = gw.client()
        raw = client.chat.completions.with_raw_response.create(
            model="auto",
            messages=[{"role": "user", "content": "Kalp krizinde aspirin?"}],
            max_tokens=3,
            extra_body={"rag": {"enabled": True}},
        )
        body = raw.http_response.json()
        assert body["model"] == "local"  # a short question stays simple with the context added
        assert body["rag"]["citations"][0]["doc_id"] == "kalp.md"
        assert any("ASPİRİN" in text and "[1]" in text for text in gw.local.seen)
    (row,) = ledger(settings)
    assert routing(row)["band"] == "simple" and row.status == "ok"
