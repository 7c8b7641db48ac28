"""The offline base model: fetched from the package index, saved as a plain directory, loads
fast and answers sensibly; bad model specs fail with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from paramstack.errors import InvalidInput
from paramstack.llm.base_model import ModelSource, load_causal_lm


def test_default_base_answers_a_simple_question(base_model_dir: Path) -> None:
    model, tokenizer = load_causal_lm(base_model_dir)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"]
    out = model.generate(ids, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0][ids.shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    assert not (base_model_dir.parent / f"{base_model_dir.name}.partial").exists()


def test_model_source_parses_paths_and_hub_ids(tmp_path: Path) -> None:
    assert ModelSource.parse("HuggingFaceTB/SmolLM2-135M-Instruct").hub_id is not None
    assert ModelSource.parse(tmp_path).path == tmp_path
    with pytest.raises(InvalidInput, match="does not exist"):
        ModelSource.parse(tmp_path / "missing.gguf")
    with pytest.raises(InvalidInput, match="not a transformers model directory"):
        ModelSource.parse(tmp_path).from_pretrained_args()
    with pytest.raises(InvalidInput, match="neither an existing path nor a hub id"):
        ModelSource.parse("just-a-name")
    text = tmp_path / "weights.bin"
    text.write_bytes(b"x")
    with pytest.raises(InvalidInput, match=r"not a \.gguf model"):
        ModelSource.parse(text).from_pretrained_args()
