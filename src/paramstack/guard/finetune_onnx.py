"""The fine-tuned injection classifier as ONNX, scored with onnxruntime + ``tokenizers``.

The gateway must not need torch, so the fine-tuned BERT is exported once (its logit per
window) and served like session 5's frozen encoder; the export is checked against torch on
windows of real texts before it is written (max absolute logit difference).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from paramstack.guard.token_windows import (
    WindowConfig,
    WindowTokenizer,
    flatten,
    length_batches,
    max_per_text,
    padded,
)

ONNX_FILE = "classifier.onnx"
META_FILE = "finetune.json"


def export_classifier(
    model: Any,
    tokenizer_json: Path,
    out_dir: Path,
    windows: WindowConfig,
    parity_texts: Sequence[str],
    tolerance: float = 1e-3,
) -> float:
    """Writes ``classifier.onnx``, ``tokenizer.json`` and ``finetune.json`` to ``out_dir``;
    returns the max |ONNX − torch| logit over the windows of ``parity_texts`` (raises
    ``ValueError`` above ``tolerance``). Needs torch (training stack)."""
    import torch

    from paramstack.guard.finetune import score_texts

    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval()

    class _Logit(torch.nn.Module):  # keyword call, one logit per window
        def __init__(self) -> None:
            super().__init__()
            self.bert = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).logits[:, 0]

    ids = torch.ones((2, 16), dtype=torch.int64)
    with torch.no_grad():
        torch.onnx.export(
            _Logit(),
            (ids, torch.ones_like(ids)),
            str(out_dir / ONNX_FILE),
            input_names=["input_ids", "attention_mask"],
            output_names=["logit"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "logit": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    shutil.copy(tokenizer_json, out_dir / "tokenizer.json")
    (out_dir / META_FILE).write_text(json.dumps(dataclasses.asdict(windows)))
    tokenizer = WindowTokenizer(tokenizer_json, windows)
    want = score_texts(model, tokenizer, parity_texts)
    got = FinetunedScorer(out_dir).logits(parity_texts)
    diff = float(np.max(np.abs(want - got))) if len(parity_texts) else 0.0
    if diff > tolerance:
        raise ValueError(f"ONNX export differs from torch by {diff:.2e} (> {tolerance})")
    return diff


class FinetunedScorer:
    """onnxruntime session + window tokenizer over an :func:`export_classifier` folder."""

    def __init__(self, folder: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        self.windows = WindowConfig(**json.loads((folder / META_FILE).read_text()))
        self.tokenizer = WindowTokenizer(folder / "tokenizer.json", self.windows)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(folder / ONNX_FILE), opts, providers=["CPUExecutionProvider"]
        )

    def logits(self, texts: Sequence[str], batch: int = 32) -> npt.NDArray[np.float64]:
        """Each text's logit: the maximum over its windows."""
        flat, owner = flatten(self.tokenizer.windows(texts))
        out = np.zeros(len(flat))
        for idx in length_batches(flat, batch):
            ids, mask = padded([flat[i] for i in idx])
            (logit,) = self.session.run(["logit"], {"input_ids": ids, "attention_mask": mask})
            out[idx] = logit
        return max_per_text(out, owner, len(texts))

    def score(self, text: str) -> float:
        """Probability that ``text`` is an injection (sigmoid of its logit)."""
        return float(1 / (1 + np.exp(-self.logits([text])[0])))
