"""A gateway in front of two loopback upstreams (stable and candidate), for the traffic tests.

``chat-v1`` lives on the stable upstream; ``chat-v2`` (healthy), ``chat-v2-broken`` (answers
500) and ``chat-v2-slow`` (waits ``SLOW_S`` first) on the candidate upstream, so the upstream
hit counters say which arm served a call. ``auto-v2`` is a complexity-router virtual model
whose every band is ``chat-v2``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
import openai
import yaml
from pydantic import SecretStr

from paramstack.config import Settings
from paramstack.registry import api_keys, tenants
from paramstack.registry import traffic as registry
from paramstack.registry.api_keys import KeySpec
from paramstack.registry.key_material import resolve_pepper
from paramstack.registry.tenants import TenantSpec
from paramstack.registry.traffic import SplitSpec
from paramstack.store.engine import make_engine, session_factory, transaction
from tests.conftest import LiveServer, free_port, run_server
from tests.fake_upstream import Upstream, run_upstream

ADMIN_TOKEN = "admin-secret-for-tests-only-0123456789"
PRICES = {"chat-v1": (Decimal("0.5"), Decimal("1.5")), "chat-v2": (Decimal("0.2"), Decimal("0.4"))}
MESSAGES: Any = [{"role": "user", "content": "Say hello to Ankara please"}]


@dataclass
class TrafficGateway:
    server: LiveServer
    stable: Upstream
    candidate: Upstream
    key: str
    settings: Settings

    @cached_property
    def openai(self) -> openai.OpenAI:
        """One client for the whole test: building one per call costs more than the call."""
        return self.client()

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.server.url}/v1", api_key=self.key, max_retries=0)

    def admin(self, token: str | None = ADMIN_TOKEN) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.Client(base_url=f"{self.server.url}/v1/admin", headers=headers, timeout=30)

    def ask(self, user: str, model: str = "chat") -> str | None:
        """The target that answered ``user`` (the response's model), None for a 5xx."""
        try:
            done = self.openai.chat.completions.create(
                model=model, messages=MESSAGES, max_tokens=2, user=user
            )
        except openai.InternalServerError:
            return None
        return done.model


def write_models(path: Path, stable: str, candidate: str) -> Path:
    fast = {"backend": "openai-compatible", "max_retries": 0, "breaker_failures": 1000}
    models = [
        {**fast, "name": "chat-v1", "base_url": stable, "upstream_model": "tiny-chat"},
        {**fast, "name": "chat-v2", "base_url": candidate, "upstream_model": "tiny-chat"},
        {**fast, "name": "chat-v2-broken", "base_url": candidate, "upstream_model": "fail-500"},
        {**fast, "name": "chat-v2-slow", "base_url": candidate, "upstream_model": "slow"},
    ]
    # a virtual model of the complexity router, every band on the candidate upstream
    auto = {"name": "auto-v2", "simple": "chat-v2", "medium": {"chat-v2": 1}, "complex": "chat-v2"}
    path.write_text(yaml.safe_dump({"models": models, "routers": [auto]}))
    return path


def prepare(settings: Settings, split: SplitSpec | None) -> str:
    """A tenant with a price book and key; the split ``chat`` when given."""
    engine = make_engine(settings.resolved_database_url)
    try:
        with transaction(session_factory(engine)) as s:
            tenants.create_tenant(s, TenantSpec(id="acme", name="Acme"))
            for model, (inp, out) in PRICES.items():
                tenants.set_price(s, "acme", model, inp, out)
            if split is not None:
                registry.set_split(s, "chat", split, actor="test")
            return api_keys.create_key(s, "acme", KeySpec(), resolve_pepper(settings)).plaintext
    finally:
        engine.dispose()


@contextmanager
def traffic_gateway(
    settings: Settings, tmp_path: Path, split: SplitSpec | None = None
) -> Iterator[TrafficGateway]:
    key = prepare(settings, split)
    with run_upstream(free_port()) as stable, run_upstream(free_port()) as candidate:
        models = write_models(tmp_path / "models.yaml", stable.url, candidate.url)
        cfg = settings.model_copy(
            update={
                "llm_models_file": models,
                "admin_token": SecretStr(ADMIN_TOKEN),
                "traffic_check_s": 0.1,
            }
        )
        with run_server(cfg) as server:
            yield TrafficGateway(server, stable, candidate, key, cfg)


def wait_until(check: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.05)
