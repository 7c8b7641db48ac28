"""The in-process transformers backend serves an adapter trained with vocabulary extension:
the shared base gets the extra embedding rows, the adapter's requests are read and written
with its own tokenizer, and the base keeps answering exactly as before. A small Llama
(SmolLM2's architecture and tokenizer, two layers) keeps it fast."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from paramstack.backends.protocol import BackendConfig, build_backend
from tests.tiny_llama import save_tiny_llama

WORDS = ["cumhuriyetimizin", "milletimizin"]
QUESTION = [{"role": "user", "content": "Cumhuriyetimizin ve milletimizin geleceği"}]


@pytest.fixture(scope="module")
def extended(base_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(base dir, adapter dir): the adapter adds WORDS as new tokens with trained rows."""
    import torch
    from peft import get_peft_model
    from transformers import AutoTokenizer, LlamaForCausalLM

    from paramstack.train.adapters import write_sidecar
    from paramstack.train.trainer_support import lora_config
    from paramstack.train.vocab import extend_vocabulary

    root = tmp_path_factory.mktemp("vocab-lm")
    save_tiny_llama(base_model_dir, root / "base")
    tok = AutoTokenizer.from_pretrained(root / "base")
    model = LlamaForCausalLM.from_pretrained(root / "base")
    new_ids = extend_vocabulary(model, tok, WORDS)
    assert len(new_ids) == len(WORDS)
    peft_model = get_peft_model(model, lora_config(4, 8, 0.0, ["q_proj", "v_proj"], new_ids))
    with torch.no_grad():  # "training": LoRA B and the new rows move
        for name, param in peft_model.named_parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * (1.0 if "token" in name else 0.2))
    peft_model.save_pretrained(root / "adapter")
    tok.save_pretrained(root / "adapter")
    write_sidecar(root / "adapter", {"base_model": str(root / "base")})
    return root / "base", root / "adapter"


def reference(model: Any, tokenizer: Any) -> tuple[str, int]:
    """A plain greedy ``model.generate``: the answer and the prompt's token count."""
    import torch

    ids = tokenizer.apply_chat_template(
        QUESTION, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"]
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=8, do_sample=False)
    return str(tokenizer.decode(out[0][ids.shape[1] :], skip_special_tokens=True)), ids.shape[1]


def test_extended_vocabulary_adapter_is_servable(extended: tuple[Path, Path]) -> None:
    from paramstack.llm.base_model import load_causal_lm
    from paramstack.train.adapters import load_with_adapter

    base_dir, adapter_dir = extended
    tuned, own_tok = load_with_adapter(adapter_dir)
    base, base_tok = load_causal_lm(base_dir)
    want_tuned, tuned_prompt = reference(tuned, own_tok)
    want_base, base_prompt = reference(base, base_tok)
    assert tuned_prompt < base_prompt  # the new whole-word tokens shorten the prompt
    options = (("adapters", (("tr", str(adapter_dir)),)), ("model", str(base_dir)))
    backend: Any = build_backend(BackendConfig(kind="transformers", options=options))
    rows = backend.model.get_base_model().get_input_embeddings().weight.shape[0]
    assert rows == len(own_tok) > len(base_tok)

    async def ask(model: str) -> Any:
        return await backend.chat(
            {"model": model, "messages": QUESTION, "max_tokens": 8, "temperature": 0}
        )

    try:
        got_tuned, got_base = asyncio.run(ask("tr")), asyncio.run(ask("base"))
    finally:
        asyncio.run(backend.aclose())
    assert got_tuned.usage.prompt_tokens == tuned_prompt
    assert got_tuned.body["choices"][0]["message"]["content"] == want_tuned
    assert got_base.usage.prompt_tokens == base_prompt
    assert got_base.body["choices"][0]["message"]["content"] == want_base
    assert want_tuned != want_base


def test_trls_fused_head_reads_the_extended_rows(extended: tuple[Path, Path]) -> None:
    """DPO on an extended-vocabulary adapter: TRL's fused LM head (it reads ``lm_head.weight``
    and ``.bias``) works on PEFT's token wrapper and scores the adapter's new rows."""
    import torch
    from trl.trainer.utils import add_fused_lm_head

    from paramstack.train.adapters import load_with_adapter
    from paramstack.train.trainer_support import give_token_wrappers_a_bias

    model, tok = load_with_adapter(extended[1], trainable=True)
    add_fused_lm_head(model.get_base_model())
    give_token_wrappers_a_bias(model)
    ids = tok(" ".join(WORDS) + " ve " + WORDS[0], return_tensors="pt")["input_ids"]
    assert int(ids.max()) >= len(tok) - len(WORDS)  # the text uses the new tokens
    with torch.no_grad():
        fused = model(input_ids=ids, labels=ids, fused_lm_head=True).log_probs
        logits = model(input_ids=ids).logits
    plain = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, ids[:, 1:, None])[..., 0]
    torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-4)


def test_dpo_reference_is_the_sft_adapter_for_new_words(
    extended: tuple[Path, Path], tmp_path: Path
) -> None:
    """Before any DPO step the policy equals its reference, new-word rows included: the
    held-out reward margin starts at zero."""
    import json

    from paramstack.train.dpo import DpoConfig, run_dpo

    pairs = tmp_path / "pairs.jsonl"
    rows = [
        {"prompt": f"{WORDS[i % 2]} {i}?", "chosen": f"{WORDS[0]} evet {i}.", "rejected": "Yok."}
        for i in range(8)
    ]
    pairs.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    cfg = DpoConfig(
        pairs=str(pairs), sft_adapter=str(extended[1]), out_dir=str(tmp_path / "dpo"),
        max_steps=1, batch_size=2, heldout_fraction=0.5, save_steps=1, mlflow=False,
    )  # fmt: skip
    metrics = run_dpo(cfg)["metrics"]
    assert metrics["reward_margin_before"] == pytest.approx(0.0, abs=1e-5)
