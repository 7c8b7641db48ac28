"""Causal LM (base + merged LoRA adapter) → one ONNX file with ``input_ids → logits``.

The graph has no KV cache and no attention mask: one unpadded sequence per row, which keeps
it a single-input model the registry's ONNX checks accept. It is verified three ways before
it counts as exported: logits within ``atol`` of torch, the same argmax at every position,
and the same greedy continuation (a no-cache loop over the ONNX session) on a few prompts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from paramstack.export.onnx_export import ParityError, _quiet_exporter

DEFAULT_PROMPTS = ("Türkiye'nin başkenti neresidir?", "Write one sentence about the sea.")


class LogitsOnly(torch.nn.Module):
    """``input_ids -> logits`` without the cache: the traced graph stays a pure function."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, use_cache=False).logits  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ExportReport:
    onnx_path: Path
    max_abs_diff: float
    argmax_agreement: float
    greedy_equal: int
    prompts: int


def export_causal_lm(model: Any, path: Path, *, opset: int = 18) -> Path:
    """Write ``path`` (temp file + rename: never half-written); returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    wrapper = LogitsOnly(model).eval()
    example = torch.tensor(
        [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]], dtype=torch.long
    )  # batch 2: a size-1 dim would be specialised
    seq = torch.export.Dim("sequence", min=1, max=4096)
    try:
        with torch.no_grad(), _quiet_exporter():
            program = torch.onnx.export(
                wrapper, (example,), input_names=["input_ids"], output_names=["logits"],
                opset_version=opset, dynamo=True, verbose=False,
                dynamic_shapes=({0: torch.export.Dim("batch", max=64), 1: seq},),
            )  # fmt: skip
            if program is None:
                raise RuntimeError("torch.onnx.export returned no program")
            program.save(str(tmp), external_data=False)
        onnx.checker.check_model(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def greedy_onnx(
    session: ort.InferenceSession, ids: list[int], steps: int, eos: int | None
) -> list[int]:
    out = list(ids)
    for _ in range(steps):
        logits = session.run(None, {"input_ids": np.asarray([out], dtype=np.int64)})[0]
        nxt = int(np.argmax(logits[0, -1]))
        out.append(nxt)
        if nxt == eos:
            break
    return out[len(ids) :]


def greedy_torch(model: Any, ids: list[int], steps: int, eos: int | None) -> list[int]:
    out = list(ids)
    with torch.no_grad():
        for _ in range(steps):
            logits = model(input_ids=torch.tensor([out]), use_cache=False).logits
            nxt = int(torch.argmax(logits[0, -1]))
            out.append(nxt)
            if nxt == eos:
                break
    return out[len(ids) :]


def verify(
    model: Any,
    tokenizer: Any,
    path: Path,
    *,
    prompts: tuple[str, ...] = DEFAULT_PROMPTS,
    atol: float = 1e-4,
    steps: int = 8,
) -> ExportReport:
    """Parity of logits and argmax, and greedy equality; raises ParityError on a miss."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst, agree, total, equal = 0.0, 0, 0, 0
    eos = tokenizer.eos_token_id
    for prompt in prompts:
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            ref = model(input_ids=torch.tensor([ids]), use_cache=False).logits.numpy()
        got = session.run(None, {"input_ids": np.asarray([ids], dtype=np.int64)})[0]
        worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - ref))))
        agree += int(np.sum(got.argmax(-1) == ref.argmax(-1)))
        total += ref.shape[1]
        equal += int(greedy_onnx(session, ids, steps, eos) == greedy_torch(model, ids, steps, eos))
    report = ExportReport(path, worst, agree / total, equal, len(prompts))
    if worst > atol:
        raise ParityError(f"ONNX logits differ from torch by {worst:.3g} (tolerance {atol:g})")
    if report.argmax_agreement < 1.0 or equal < len(prompts):
        raise ParityError(
            f"argmax agreement {report.argmax_agreement:.4f}, greedy equal {equal}/{len(prompts)}"
        )
    return report


def export_adapter(
    adapter_dir: Path | None, out_dir: Path, *, base: str = "", atol: float = 1e-4
) -> ExportReport:
    """Merge ``adapter_dir`` into its base (or take the base alone), export, verify, and write
    ``model.onnx`` + tokenizer + ``export.json`` into ``out_dir``."""
    from paramstack.llm.base_model import load_causal_lm
    from paramstack.train.adapters import merged_model, resolve_base

    if adapter_dir is not None:
        model, tokenizer = merged_model(adapter_dir, base=base)
    else:
        model, tokenizer = load_causal_lm(resolve_base(base))
    model.eval()
    path = export_causal_lm(model, out_dir / "model.onnx")
    report = verify(model, tokenizer, path, atol=atol)
    tokenizer.save_pretrained(str(out_dir / "tokenizer"))
    summary = {
        "metrics": {
            "onnx_max_abs_diff": report.max_abs_diff,
            "onnx_argmax_agreement": report.argmax_agreement,
            "onnx_greedy_equal": report.greedy_equal,
        },
        "lineage": {"adapter": str(adapter_dir) if adapter_dir else None, "base_model": base},
    }
    (out_dir / "export.json").write_text(json.dumps(summary, indent=2) + "\n")
    return report
