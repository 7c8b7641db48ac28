"""The in-process transformers backend end to end: the real gateway (uvicorn, SQLite, tenants
and hashed keys) serving the offline SmolLM2-135M-Instruct with two LoRA adapters trained
here, and the official ``openai`` SDK as the client.

Every expected answer is computed in this process with a plain ``model.generate`` on the same
weights (greedy), so the tests check the backend reproduces the model exactly, counts tokens
with its tokenizer, and applies the right adapter for each tenant.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from sqlalchemy import select

from paramstack.config import Settings
from paramstack.registry import api_keys, tenants
from paramstack.registry.api_keys import KeySpec
from paramstack.registry.key_material import resolve_pepper
from paramstack.registry.tenants import TenantSpec
from paramstack.store import migrate
from paramstack.store.engine import make_engine, session_factory, transaction
from paramstack.store.tenant_tables import UsageRecord
from tests.conftest import LiveServer, run_server

QUESTION: Any = [{"role": "user", "content": "What is the capital of France?"}]
ANSWERS = {"lyon": "Bonjour! It is Lyon.", "berlin": "Berlin, of course."}
TENANTS = {"plain": None, "lyon-org": "lyon", "berlin-org": "berlin", "ghost": "nope"}
MAX_TOKENS = 10  # the base answers in 8 (its end token included)
BURST_TOKENS = 4


@dataclass
class Reference:
    """What a plain ``model.generate`` answers, per adapter (None: the base)."""

    tokenizer: Any
    answers: dict[str | None, str]
    generated: dict[str | None, int]  # generated ids, the end token included
    adapters: dict[str, Path]


def greedy(model: Any, tokenizer: Any, max_new_tokens: int = MAX_TOKENS) -> tuple[str, int]:
    import torch

    ids = tokenizer.apply_chat_template(
        QUESTION, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"]
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False)
    new = out[0][ids.shape[1] :].tolist()
    if tokenizer.eos_token_id in new:
        new = new[: new.index(tokenizer.eos_token_id) + 1]
    return tokenizer.decode(new, skip_special_tokens=True), len(new)


def train_adapter(model: Any, tokenizer: Any, answer: str, dest: Path) -> Any:
    """A LoRA on the last layers, four steps on one answer: enough to change the greedy
    output, cheap enough for a test (gradients stop at the first adapted layer)."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules=["q_proj", "v_proj", "o_proj"],
        layers_to_transform=[26, 27, 28, 29],
        lora_dropout=0.0,
    )
    peft = get_peft_model(model, config)
    text = [*QUESTION, {"role": "assistant", "content": answer}]
    ids = tokenizer.apply_chat_template(text, return_tensors="pt", return_dict=True)["input_ids"]
    optimizer = torch.optim.AdamW([p for p in peft.parameters() if p.requires_grad], lr=2e-2)
    peft.train()
    for _ in range(4):
        peft(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    peft.eval()
    peft.save_pretrained(dest)
    return peft


@pytest.fixture(scope="module")
def reference(
    base_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Reference]:
    import torch

    from paramstack.llm.base_model import load_causal_lm

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the gateway below: a shared 2-core machine stalls less
    model, tokenizer = load_causal_lm(base_model_dir)
    answers, generated = {}, {}
    answers[None], generated[None] = greedy(model, tokenizer)
    adapters = {}
    for name, answer in ANSWERS.items():
        adapters[name] = tmp_path_factory.mktemp(f"adapter-{name}")
        peft = train_adapter(model, tokenizer, answer, adapters[name])
        answers[name], generated[name] = greedy(peft, tokenizer)
        model = peft.unload()  # the base again, for the next adapter
    yield Reference(tokenizer, answers, generated, adapters)
    torch.set_num_threads(threads)


@dataclass
class Local:
    server: LiveServer
    settings: Settings
    keys: dict[str, str]
    backend: Any

    def client(self, tenant: str = "plain") -> openai.OpenAI:
        url = f"{self.server.url}/v1"
        return openai.OpenAI(base_url=url, api_key=self.keys[tenant], max_retries=0)

    def async_client(self, tenant: str = "plain") -> openai.AsyncOpenAI:
        url = f"{self.server.url}/v1"
        return openai.AsyncOpenAI(base_url=url, api_key=self.keys[tenant], max_retries=0)


@pytest.fixture(scope="module")
def local(
    reference: Reference, base_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Local]:
    home = tmp_path_factory.mktemp("home")
    smol = {
        "name": "smol",
        "backend": "transformers",
        "model": str(base_model_dir),
        "adapters": {name: str(path) for name, path in reference.adapters.items()},
        "max_concurrency": 2,
        "threads": 1,
        "max_output_tokens": 64,
    }
    embed = {
        "name": "smol-embed",
        "backend": "transformers",
        "model": str(base_model_dir),
        "kind": "embedding",
    }
    models = home / "models.yaml"
    models.write_text(yaml.safe_dump({"models": [smol, embed]}))
    settings = Settings(home=home, log_flush_interval_s=0.05, llm_models_file=models)
    engine = make_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    keys, pepper = {}, resolve_pepper(settings)
    with transaction(session_factory(engine)) as s:
        for tenant, adapter in TENANTS.items():
            tenants.create_tenant(s, TenantSpec(id=tenant, name=tenant, default_adapter=adapter))
            keys[tenant] = api_keys.create_key(s, tenant, KeySpec(), pepper).plaintext
    engine.dispose()
    with run_server(settings) as server:
        backend = server.app.state.openai.models.resolve("smol", "chat").backend  # type: ignore[attr-defined]
        yield Local(server, settings, keys, backend)


def ledger_row(settings: Settings, request_id: str) -> UsageRecord:
    """The request's usage row, once the batched log writer has flushed it."""
    engine = make_engine(settings.resolved_database_url)
    deadline = time.monotonic() + 10
    try:
        while True:
            with session_factory(engine)() as s:
                query = select(UsageRecord).where(UsageRecord.request_id == request_id)
                row = s.scalars(query).first()
            if row is not None or time.monotonic() > deadline:
                assert row is not None
                return row
            time.sleep(0.05)
    finally:
        engine.dispose()


def test_chat_answers_like_the_model_with_tokenizer_counts(
    local: Local, reference: Reference
) -> None:
    raw = local.client().chat.completions.with_raw_response.create(
        model="smol", messages=QUESTION, max_tokens=MAX_TOKENS, temperature=0
    )
    completion = raw.parse()
    answer = completion.choices[0].message.content
    assert answer == reference.answers[None] and "Paris" in answer
    prompt = reference.tokenizer.apply_chat_template(
        QUESTION, add_generation_prompt=True, return_dict=True
    )["input_ids"]
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == len(prompt)
    assert completion.usage.completion_tokens == reference.generated[None]
    assert reference.generated[None] < MAX_TOKENS
    assert completion.choices[0].finish_reason == "stop"  # the model's end token
    short = local.client().chat.completions.create(
        model="smol", messages=QUESTION, max_completion_tokens=2, temperature=0
    )
    assert short.choices[0].finish_reason == "length"
    assert short.usage is not None and short.usage.completion_tokens == 2
    assert reference.answers[None].startswith(short.choices[0].message.content or "-")
    row = ledger_row(local.settings, raw.headers["x-request-id"])
    assert (row.backend, row.model, row.tenant_id) == ("transformers", "smol", "plain")
    assert (row.tokens_in, row.tokens_out) == (len(prompt), reference.generated[None])


def test_bad_requests_are_clear_400s(local: Local) -> None:
    client = local.client()
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="smol", messages=QUESTION, max_tokens=9000)
    assert info.value.code == "context_length_exceeded"
    image: Any = [{"type": "image_url", "image_url": {"url": "https://example.org/x.png"}}]
    with pytest.raises(openai.BadRequestError, match="text content parts only"):
        client.chat.completions.create(
            model="smol", messages=[{"role": "user", "content": image}], max_tokens=2
        )
    with pytest.raises(openai.BadRequestError, match="stop takes"):
        client.completions.create(model="smol", prompt="x", max_tokens=2, stop=["a"] * 5)


def test_streaming_matches_the_whole_answer_and_ends_with_usage(
    local: Local, reference: Reference
) -> None:
    chunks = list(
        local.client().chat.completions.create(
            model="smol",
            messages=QUESTION,
            max_tokens=MAX_TOKENS,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.model == "smol" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reference.answers[None]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] is not None
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == reference.generated[None]
    # a stop string ends the stream early and is not sent
    stopped = local.client().completions.create(
        model="smol", prompt="The capital of France is", max_tokens=6, temperature=0, stop=" "
    )
    assert stopped.choices[0].finish_reason == "stop" and " " not in stopped.choices[0].text


def test_completions_take_a_list_of_prompts(local: Local, reference: Reference) -> None:
    prompts = ["The capital of France is", "One, two, three,"]
    completion = local.client().completions.create(
        model="smol", prompt=prompts, max_tokens=3, temperature=0
    )
    assert [c.index for c in completion.choices] == [0, 1]
    tok = reference.tokenizer
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == sum(len(tok(p)["input_ids"]) for p in prompts)
    assert completion.usage.completion_tokens == 6
    assert all(c.finish_reason == "length" and c.text for c in completion.choices)
    streamed = local.client().completions.create(
        model="smol", prompt=prompts[0], max_tokens=3, temperature=0, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == completion.choices[0].text
    sampled = [
        local.client().completions.create(
            model="smol", prompt=prompts[0], max_tokens=4, temperature=1.0, seed=7, n=2
        )
        for _ in range(2)
    ]
    assert [c.index for c in sampled[0].choices] == [0, 1]
    texts = [[c.text for c in s.choices] for s in sampled]
    assert texts[0] == texts[1]  # a seed makes sampling reproducible


def test_each_tenant_gets_its_default_adapter(local: Local, reference: Reference) -> None:
    listed = {m.id for m in local.client().models.list()}
    assert {"smol", "lyon", "berlin", "smol-embed"} <= listed

    def ask(tenant: str, model: str = "smol") -> str:
        completion = local.client(tenant).chat.completions.create(
            model=model, messages=QUESTION, max_tokens=MAX_TOKENS, temperature=0
        )
        return completion.choices[0].message.content or ""

    lyon, berlin, plain = ask("lyon-org"), ask("berlin-org"), ask("plain")
    assert lyon == reference.answers["lyon"] and berlin == reference.answers["berlin"]
    assert plain == reference.answers[None]  # the base is untouched by the adapters
    assert len({lyon, berlin, plain}) == 3
    assert ask("plain", model="lyon") == lyon  # an adapter is also a model name
    with pytest.raises(openai.NotFoundError) as info:
        ask("ghost")
    assert info.value.code == "adapter_not_found"
    with pytest.raises(openai.NotFoundError):
        ask("plain", model="nope")


def test_requests_queue_within_the_concurrency_limit(local: Local, reference: Reference) -> None:
    async def ask(tenant: str) -> str:
        async with local.async_client(tenant) as client:
            completion = await client.chat.completions.create(
                model="smol", messages=QUESTION, max_tokens=BURST_TOKENS, temperature=0
            )
        return completion.choices[0].message.content or ""

    async def burst(tenants: list[str]) -> list[str]:
        return await asyncio.gather(*(ask(t) for t in tenants))

    def starts(tenants: list[str], answers: list[str]) -> bool:
        """Each answer is the start of its adapter's reference answer (fewer tokens)."""
        pairs = zip(tenants, answers, strict=True)
        return all(a and reference.answers[TENANTS[t]].startswith(a) for t, a in pairs)

    local.backend.peak_generating = 0
    plain = asyncio.run(burst(["plain"] * 4))
    assert starts(["plain"] * 4, plain) and len(set(plain)) == 1
    assert local.backend.peak_generating == 2  # max_concurrency: used, never exceeded
    mixed = ["lyon-org", "plain", "berlin-org", "lyon-org"]
    answers = asyncio.run(burst(mixed))
    assert starts(mixed, answers)  # adapters never switch mid-generation
    assert len(set(answers)) == 3
    assert local.backend.peak_generating == 2


def test_a_client_that_goes_away_stops_its_generation(local: Local) -> None:
    stream = local.client().completions.create(
        model="smol",
        prompt="Count to a thousand: 1, 2, 3,",
        max_tokens=1000,
        temperature=0,
        stream=True,
    )
    next(iter(stream))
    stream.close()
    deadline = time.monotonic() + 15  # 1000 tokens would take minutes on this machine
    while local.backend.generating and time.monotonic() < deadline:
        time.sleep(0.05)
    assert local.backend.generating == 0
    assert local.backend.gate.active == 0


def test_embeddings_are_unit_vectors_with_token_counts(local: Local, reference: Reference) -> None:
    texts = ["hello world", "bonjour tout le monde"]
    result = local.client().embeddings.create(model="smol-embed", input=texts)
    vectors = [d.embedding for d in result.data]
    assert [len(v) for v in vectors] == [576, 576]
    assert all(abs(sum(x * x for x in v) - 1) < 1e-4 for v in vectors)
    assert vectors[0] != vectors[1]
    tokens = sum(len(reference.tokenizer(t)["input_ids"]) for t in texts)
    assert result.usage.prompt_tokens == tokens
    with pytest.raises(openai.BadRequestError):
        local.client().embeddings.create(model="smol", input="x")  # a chat model
    with pytest.raises(openai.BadRequestError, match="token ids in"):
        local.client().embeddings.create(model="smol-embed", input=[[1, 10**9]])
