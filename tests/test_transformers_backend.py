"""The in-process transformers backend's parts that need no model weights: text deltas with
stop strings (on the real SmolLM2 tokenizer), sampling validation, the adapter gate, adapter
routes in the model table, configuration errors, and that importing it pulls in no torch."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from paramstack.backends.adapter_gate import AdapterGate
from paramstack.backends.local_generation import RowText, Sampling
from paramstack.backends.protocol import BackendConfig, build_backend
from paramstack.errors import InvalidInput, NotFound
from paramstack.gateway.model_table import ModelSpec, ModelTable

TEXT = "The capital of France is Paris. Ünïcode ✓ done"


@pytest.fixture(scope="module")
def tokenizer(base_model_dir: Path) -> Any:
    from paramstack.llm.base_model import load_tokenizer

    return load_tokenizer(base_model_dir)


def run_row(tokenizer: Any, stops: tuple[str, ...], limit: int = 100) -> tuple[list[str], RowText]:
    ids = tokenizer(TEXT)["input_ids"] + [tokenizer.eos_token_id]

    def decode(part: list[int]) -> str:
        return str(tokenizer.decode(part, skip_special_tokens=True))

    row = RowText(decode, stops, frozenset({tokenizer.eos_token_id}), limit)
    deltas = []
    for token in ids:
        text, reason = row.push(token)
        deltas.append(text)
        if reason:
            break
    return deltas, row


def test_row_text_cuts_at_stop_strings_and_never_sends_their_start(tokenizer: Any) -> None:
    deltas, row = run_row(tokenizer, ("Paris", "zzz"))
    assert "".join(deltas) == "The capital of France is "
    assert row.reason == "stop"
    assert not any("Par" in d for d in deltas)  # held back while it could become the stop


def test_row_text_ends_on_eos_and_on_the_token_limit(tokenizer: Any) -> None:
    deltas, row = run_row(tokenizer, ())
    assert "".join(deltas) == TEXT and row.reason == "stop"
    assert not any("\ufffd" in d for d in deltas)  # half characters are never sent
    deltas, row = run_row(tokenizer, (), limit=3)
    assert row.reason == "length" and len(row.ids) == 3
    assert "".join(deltas) == tokenizer.decode(row.ids)


def test_sampling_reads_openai_fields_and_rejects_bad_ones() -> None:
    sampling = Sampling.from_request(
        {"max_completion_tokens": 7, "max_tokens": 99, "temperature": 0, "stop": "x", "n": 2}
    )
    assert (sampling.max_new_tokens, sampling.greedy, sampling.stop, sampling.n) == (
        7,
        True,
        ("x",),
        2,
    )
    assert not Sampling.from_request({"max_tokens": 1}).greedy  # OpenAI's default is 1.0
    for bad in (
        {"stop": ["a", "b", "c", "d", "e"]},
        {"stop": [""]},
        {"seed": "1"},
        {"temperature": 3},
        {"top_p": True},
        {"n": 1.5},
    ):
        with pytest.raises(InvalidInput):
            Sampling.from_request({"max_tokens": 4, **bad})


def test_adapter_gate_bounds_concurrency_and_switches_only_when_idle() -> None:
    events: list[Any] = []
    gate = AdapterGate(2, lambda adapter: events.append(("switch", adapter, gate.active)))
    peak = 0

    async def work(adapter: str | None, tag: int) -> None:
        nonlocal peak
        async with gate.slot(adapter):
            peak = max(peak, gate.active)
            events.append(("run", adapter, tag))
            await asyncio.sleep(0.02)

    async def main() -> None:
        jobs = [("a", 0), ("a", 1), ("a", 2), (None, 3), ("a", 4), ("b", 5)]
        await asyncio.gather(*(work(a, t) for a, t in jobs))

    asyncio.run(main())
    assert peak == 2
    switches = [e for e in events if e[0] == "switch"]
    assert switches == [
        ("switch", "a", 0),
        ("switch", None, 0),
        ("switch", "a", 0),
        ("switch", "b", 0),
    ]
    # first come, first served: the base request (3) is not overtaken by the later "a" (4)
    assert [e[2] for e in events if e[0] == "run"] == [0, 1, 2, 3, 4, 5]


def test_adapter_gate_forgets_a_cancelled_waiter() -> None:
    gate = AdapterGate(1, lambda adapter: None)

    async def main() -> None:
        async with gate.slot("a"):
            waiter = asyncio.create_task(gate.slot("b").__aenter__())
            await asyncio.sleep(0.01)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
        async with gate.slot("c"):
            assert gate.active == 1
        assert gate.active == 0

    asyncio.run(main())


def spec(**fields: Any) -> ModelSpec:
    return ModelSpec.model_validate({"name": "base", "base_url": "http://127.0.0.1:9/v1", **fields})


def test_adapters_are_models_and_tenant_defaults_apply_to_their_base() -> None:
    table = ModelTable([spec(adapters={"legal": "/x", "med": "/y"}), spec(name="other")])
    assert table.names() == ["base", "legal", "med", "other"]
    legal = table.resolve("legal", "chat")
    base = table.resolve("base", "chat")
    assert legal.upstream_model == "legal" and legal.backend is base.backend
    routed = table.with_adapter(base, "med")
    assert (routed.name, routed.upstream_model) == ("base", "med")  # billed as the base
    assert table.with_adapter(base, None) is base
    assert table.with_adapter(legal, "med") is legal  # an explicit adapter wins
    other = table.resolve("other", "chat")
    assert table.with_adapter(other, "med") is other  # a model without adapters ignores it
    with pytest.raises(NotFound, match="'nope' is not served by model 'base'") as info:
        table.with_adapter(base, "nope")
    assert info.value.code == "adapter_not_found"
    with pytest.raises(InvalidInput, match="listed twice"):
        ModelTable([spec(adapters={"other": "/x"}), spec(name="other")])
    with pytest.raises(ValueError, match="adapter name"):
        spec(adapters={"base": "/x"})


def test_model_and_adapter_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "adapters" / "legal").mkdir(parents=True)
    (tmp_path / "adapters" / "legal" / "adapter_config.json").write_text("{}")
    models = tmp_path / "models.yaml"
    local = {"name": "m", "backend": "transformers", "model": "./missing"}
    models.write_text(
        yaml.safe_dump({"models": [{**local, "adapters": {"legal": "adapters/legal"}}]})
    )
    with pytest.raises(InvalidInput, match=f"{tmp_path}/missing does not exist"):
        ModelTable.from_file(models)  # the adapter was found: the model is checked next
    models.write_text(yaml.safe_dump({"models": [{**local, "adapters": {"legal": "nope"}}]}))
    with pytest.raises(InvalidInput, match=f"{tmp_path}/nope is not a PEFT adapter"):
        ModelTable.from_file(models)


def test_transformers_backend_config_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="needs model"):
        build_backend(BackendConfig(kind="transformers"))
    options = (("adapters", (("legal", str(tmp_path)),)), ("model", str(tmp_path)))
    with pytest.raises(InvalidInput, match="not a PEFT adapter directory"):
        build_backend(BackendConfig(kind="transformers", options=options))
    with pytest.raises(InvalidInput, match="not a transformers model directory"):
        build_backend(BackendConfig(kind="transformers", options=(("model", str(tmp_path)),)))


def test_importing_the_backend_loads_no_torch() -> None:
    code = (
        "import sys; from paramstack.backends.protocol import backend_names;"
        "print('transformers' in backend_names(), 'torch' in sys.modules,"
        " 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True False False"
