"""Prometheus metrics of the LLM routes, read back from ``GET /metrics`` after real calls.

The same gateway and fake upstream as ``test_openai_gateway``: successful chats, a quota
refusal, two 502s after retries (which open the breaker), a 503 from the open breaker and a
rate-limit refusal; every series must count exactly those.
"""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from paramstack.config import Settings
from tests.fake_upstream import chat_prompt_tokens
from tests.test_openai_gateway import MESSAGES, cost, open_gateway

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_llm_metrics_count_calls_tokens_cost_refusals_retries_and_breaker(
    settings: Settings, tmp_path: Path
) -> None:
    with open_gateway(settings, tmp_path, requests_per_minute=7, tokens_per_day=1_000) as gw:
        client = gw.client()
        for _ in range(3):
            client.chat.completions.create(model="chat-small", messages=MESSAGES, max_tokens=3)
        with pytest.raises(openai.RateLimitError) as quota:  # bound alone exceeds the quota
            client.chat.completions.create(model="chat-small", messages=MESSAGES, max_tokens=5000)
        for _ in range(2):
            with pytest.raises(openai.InternalServerError) as failed:
                client.chat.completions.create(model="broken", messages=MESSAGES, max_tokens=5)
            assert failed.value.status_code == 502
        with pytest.raises(openai.InternalServerError) as paused:
            client.chat.completions.create(model="broken", messages=MESSAGES, max_tokens=5)
        refused: list[openai.RateLimitError] = []
        for _ in range(3):  # 7 per minute; the quota refusal may or may not have used a slot
            try:
                client.chat.completions.create(model="chat-small", messages=MESSAGES, max_tokens=3)
            except openai.RateLimitError as exc:
                refused.append(exc)
        with gw.server.client() as http:
            response = http.get("/metrics")
    assert quota.value.code == "insufficient_quota" and paused.value.status_code == 503
    assert [r.code for r in refused] == ["rate_limit_exceeded"] * len(refused) and refused
    oks = 3 + 3 - len(refused)
    assert response.status_code == 200
    m = scrape(response.text)

    requests = "paramstack_llm_requests_total"
    assert value(m, requests, model="chat-small", status="200") == oks
    assert value(m, requests, model="chat-small", status="429") == 1 + len(refused)
    assert value(m, requests, model="broken", status="502") == 2
    assert value(m, requests, model="broken", status="503") == 1
    rejections = "paramstack_llm_limiter_rejections_total"
    assert value(m, rejections, model="chat-small", reason="quota") == 1
    assert value(m, rejections, model="chat-small", reason="rate") == len(refused)

    prompt = chat_prompt_tokens(MESSAGES)
    assert value(m, "paramstack_llm_tokens_total", model="chat-small", direction="in") == (
        oks * prompt
    )
    assert value(m, "paramstack_llm_tokens_total", model="chat-small", direction="out") == oks * 3
    assert value(m, "paramstack_llm_tokens_total", model="broken", direction="in") == 0
    spent = value(m, "paramstack_llm_cost_total", tenant="acme", currency="USD")
    assert spent == pytest.approx(float(oks * cost(prompt, 3)))

    # latency only for calls that reached the backend (the 503 did reach the breaker)
    assert value(m, "paramstack_llm_latency_seconds_count", model="chat-small") == oks
    assert value(m, "paramstack_llm_latency_seconds_count", model="broken") == 3
    assert value(m, "paramstack_llm_latency_seconds_sum", model="chat-small") > 0

    assert gw.upstream.hits["fail-500"] == 6
    assert value(m, "paramstack_llm_upstream_retries_total", model="broken") == 4
    assert value(m, "paramstack_llm_upstream_retries_total", model="chat-small") == 0
    assert value(m, "paramstack_llm_circuit_state", model="broken") == 2  # open
    assert value(m, "paramstack_llm_circuit_state", model="chat-small") == 0  # closed
    # the chat models share one upstream backend; embed-small is reported too
    assert ("paramstack_llm_circuit_state", frozenset({("model", "embed-small")})) in m
