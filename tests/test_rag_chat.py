"""Chat with retrieval through the official ``openai`` client: context in the prompt,
citations in the body and in the final stream event, and a signature covering the chunks."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from paramstack.attest.envelope import verify
from paramstack.attest.keys import KeyStore
from paramstack.attest.outputs import completion_output, completion_texts, grounding_refs
from paramstack.config import Settings
from paramstack.rag.index import RagIndex
from paramstack.rag.settings import store_url
from paramstack.rag.stores.protocol import open_store
from paramstack.registry import tenants
from paramstack.store.engine import make_engine, session_factory, transaction
from tests.rag_support import HOSPITAL_A, HOSPITAL_B, documents
from tests.test_openai_gateway import open_gateway
from tests.test_openai_usage import add_globex

QUESTION = [{"role": "user", "content": "Kalp krizinde aspirin ne zaman verilir?"}]


def set_rag_policy(cfg: Settings, tenant: str, policy: str) -> None:
    """In the registry, as ``paramstack rag policy`` does; the gateway reads it on refresh."""
    engine = make_engine(cfg.resolved_database_url)
    with transaction(session_factory(engine)) as session:
        tenants.update_tenant(session, tenant, {"rag_policy": policy})
    engine.dispose()


def first_grounded(create: Callable[[], Any]) -> Any:
    """Ask until an answer carries citations: a policy reaches the gateway on its refresh."""
    deadline = time.monotonic() + 10
    while "rag" not in ((answer := create()).model_extra or {}):
        assert time.monotonic() < deadline, "the tenant's rag policy never reached the gateway"
        time.sleep(0.1)
    return answer


@pytest.fixture
def signed(settings: Settings) -> Settings:
    cfg = settings.model_copy(update={"attest_passphrase": SecretStr("rag attest")})
    KeyStore(cfg.resolved_attest_keys_dir, "rag attest").rotate()
    store = open_store(store_url(cfg.home))
    RagIndex(store, "acme").ingest(documents(HOSPITAL_A))
    RagIndex(store, "globex").ingest(documents(HOSPITAL_B))
    store.close()
    return cfg


def test_chat_with_retrieval_cites_and_signs_its_grounding(
    signed: Settings, tmp_path: Path
) -> None:
    globex_key = add_globex(signed, datetime.now(UTC))
    with open_gateway(signed, tmp_path, tokens_per_day=1_000_000) as gw:
        client = gw.client()
        # policy off (no rag_collection): nothing retrieved unless the request opts in
        plain = client.chat.completions.create(model="chat-small", messages=QUESTION, max_tokens=3)
        assert getattr(plain, "rag", None) is None
        assert not any("ASPİRİN" in t for t in gw.upstream.seen)

        raw = client.chat.completions.with_raw_response.create(
            model="chat-small",
            messages=QUESTION,
            max_tokens=3,
            extra_body={"rag": {"enabled": True}},
        )
        body = raw.http_response.json()
        cites = body["rag"]["citations"]
        assert cites[0]["doc_id"] == "kalp.md" and {c["doc_id"] for c in cites} <= HOSPITAL_A.keys()
        assert any("ASPİRİN" in t and "[1]" in t for t in gw.upstream.seen)  # context reached it
        jwks = httpx.get(f"{gw.server.url}/v1/attestations/keys").json()
        texts = completion_texts(body)
        assert verify(body["attestation"], completion_output(texts, grounding_refs(body)), jwks).ok
        assert not verify(body["attestation"], completion_output(texts), jwks).ok  # refs are signed

        stream = client.chat.completions.create(
            model="chat-small", messages=QUESTION, max_tokens=3, stream=True,
            extra_body={"rag": {"enabled": True, "k": 2}},
        )  # fmt: skip
        chunks = list(stream)
        rag_events = [c for c in chunks if (c.model_extra or {}).get("rag")]
        assert len(rag_events) == 1
        streamed: dict[str, Any] = rag_events[0].model_extra["rag"]  # type: ignore[index]
        assert streamed["citations"][0]["doc_id"] == "kalp.md"
        assert len(streamed["citations"]) <= 2
        signed_event = [c for c in chunks if (c.model_extra or {}).get("attestation")][-1]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        refs = grounding_refs({"rag": streamed})
        assert verify(
            signed_event.model_extra["attestation"], completion_output([text], refs), jwks
        ).ok  # type: ignore[index]

        # tenant policy "always": retrieval without the field, opt-out per request
        set_rag_policy(signed, "acme", "always")
        always = first_grounded(
            lambda: client.chat.completions.create(
                model="chat-small", messages=QUESTION, max_tokens=3
            )
        )
        assert always.model_extra["rag"]["citations"][0]["doc_id"] == "kalp.md"  # type: ignore[index]
        opted_out = client.chat.completions.create(
            model="chat-small",
            messages=QUESTION,
            max_tokens=3,
            extra_body={"rag": {"enabled": False}},
        )
        assert "rag" not in (opted_out.model_extra or {})

        # another tenant, same question: only its own document, never acme's
        set_rag_policy(signed, "globex", "always")
        other = first_grounded(
            lambda: gw.client(globex_key).chat.completions.create(
                model="chat-small", messages=QUESTION, max_tokens=3
            )
        )
        assert [c["doc_id"] for c in other.model_extra["rag"]["citations"]] == ["gizli.txt"]  # type: ignore[index]

        bad = httpx.post(
            f"{gw.server.url}/v1/chat/completions",
            json={"model": "chat-small", "messages": QUESTION, "rag": {"tenant": "globex"}},
            headers={"authorization": f"Bearer {gw.key}"},
        )
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "rag"


def test_retrieved_context_counts_in_the_quota_reservation(
    signed: Settings, tmp_path: Path
) -> None:
    """The context message is not in the request body, so the body bound alone would let a
    grounded request reserve far fewer tokens than its prompt really has."""
    with open_gateway(signed, tmp_path, tokens_per_day=400) as gw:
        client = gw.client()
        plain = client.chat.completions.create(model="chat-small", messages=QUESTION, max_tokens=3)
        assert plain.choices  # body bound (~150) + 3 output tokens fit in the quota
        r = httpx.post(
            f"{gw.server.url}/v1/chat/completions",
            json={"model": "chat-small", "messages": QUESTION, "max_tokens": 3,
                  "rag": {"enabled": True, "k": 3}},
            headers={"authorization": f"Bearer {gw.key}"},
        )  # fmt: skip
        assert r.status_code == 429, r.text  # three cited chunks (~500 bytes) do not
        assert "quota" in r.json()["error"]["code"]
        again = client.chat.completions.create(model="chat-small", messages=QUESTION, max_tokens=3)
        assert again.choices  # the refused grounded request reserved nothing
