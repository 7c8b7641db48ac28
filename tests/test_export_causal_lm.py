"""Causal LM + merged LoRA adapter → ONNX: logits parity, argmax and greedy equality, and the
file registers as an ONNX version. A small Llama (SmolLM2's architecture and tokenizer, two
layers) keeps the torch.export tracing short; the full base runs in the slow pipeline test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from paramstack.registry import versions as registry
from paramstack.registry.versions import Registration
from paramstack.store import migrate
from paramstack.store.engine import make_engine, session_factory, transaction
from tests.tiny_llama import save_tiny_llama


@pytest.fixture(scope="module")
def small_adapter(base_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    from paramstack.train.adapters import write_sidecar

    root = tmp_path_factory.mktemp("small-lm")
    save_tiny_llama(base_model_dir, root / "base")
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                      init_lora_weights=False, task_type="CAUSAL_LM")  # fmt: skip
    peft_model = get_peft_model(LlamaForCausalLM.from_pretrained(root / "base"), lora)
    peft_model.save_pretrained(root / "adapter")
    write_sidecar(root / "adapter", {"base_model": str(root / "base")})
    return root / "adapter"


def test_export_merged_adapter_parity_and_register(small_adapter: Path, tmp_path: Path) -> None:
    from paramstack.export.causal_lm import export_adapter
    from paramstack.train.adapters import load_with_adapter

    out = tmp_path / "onnx"
    report = export_adapter(small_adapter, out)
    assert report.max_abs_diff <= 1e-4 and report.argmax_agreement == 1.0
    assert report.greedy_equal == report.prompts == 2
    summary = json.loads((out / "export.json").read_text())
    assert summary["metrics"]["onnx_greedy_equal"] == 2
    assert (out / "tokenizer" / "tokenizer_config.json").is_file()
    # the adapter really is in the graph: the ONNX logits match merged, not the bare base
    peft_model, tok = load_with_adapter(small_adapter)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    ids = np.asarray([tok("Merhaba dünya")["input_ids"]], dtype=np.int64)
    got = session.run(None, {"input_ids": ids})[0]
    import torch

    with torch.no_grad(), peft_model.disable_adapter():
        bare = peft_model(input_ids=torch.from_numpy(ids)).logits.numpy()
    assert np.abs(got - bare).max() > 1e-3
    # the parity check refuses a graph whose logits drift past atol + rtol * |logit|
    from paramstack.export.causal_lm import verify
    from paramstack.export.onnx_export import ParityError
    from paramstack.train.adapters import merged_model

    merged, tokenizer = merged_model(small_adapter)
    with torch.no_grad():
        for param in merged.parameters():
            param.add_(1e-3)  # torch now disagrees with the exported graph
    with pytest.raises(ParityError, match="differ from torch"):
        verify(merged, tokenizer, out / "model.onnx")
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.db'}")  # one exporter run: SQLite only
    migrate.upgrade(engine)
    with transaction(session_factory(engine)) as s:
        v = registry.register(
            s, Registration(name="tr-chat-onnx", artifact=out / "model.onnx",
                            metrics=summary["metrics"], lineage=summary["lineage"]),
            tmp_path / "artifacts",
        )  # fmt: skip
        shapes = (v.input_shape, v.output_shape)
    engine.dispose()
    assert shapes[0] == [-1, -1] and shapes[1][-1] == len(tok)
