"""Fine-tuning a small BERT (all-MiniLM-L6-v2) as the injection classifier (round 6).

Frozen sentence vectors failed twice (session 5, round 5): a pooled vector dilutes a buried
instruction. Here every weight is trained on our rows. A long text is read as token windows
(:mod:`token_windows`) and scored by its highest window; training uses the same max
(top-1 multiple-instance learning: a no-grad pass picks the window a row is trained on).
Rows are weighted by the square root of the n-gram model's (group, label) cell weights: the
full weights differ 100× between cells, too noisy for batches of 16. Training stack only
(torch, transformers); serving goes through :mod:`finetune_onnx`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from paramstack.guard.injection_model import balanced_weights
from paramstack.guard.token_windows import (
    WindowConfig,
    WindowTokenizer,
    flatten,
    length_batches,
    max_per_text,
    padded,
)


@dataclass(frozen=True)
class FinetuneConfig:
    """Round 6's settings, fixed in the rule before the CV ran."""

    epochs: int = 1
    batch: int = 16
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup: float = 0.1
    clip: float = 1.0
    seed: int = 0
    threads: int = 2
    score_batch: int = 64
    windows: WindowConfig = field(default_factory=WindowConfig)


def load_base(folder: Path, seed: int = 0) -> Any:
    """``AutoModelForSequenceClassification`` with one output from a Hugging Face folder; the
    new output layer's initialisation is fixed by ``seed``."""
    import torch
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_pretrained(str(folder), num_labels=1)


def row_weights(labels: Sequence[int], groups: Sequence[str]) -> npt.NDArray[np.float32]:
    """Square-rooted balanced cell weights, mean 1."""
    w = np.sqrt(balanced_weights(labels, groups).astype(np.float64))
    return np.asarray(w / w.mean(), dtype=np.float32)


def _forward(model: Any, batch: Sequence[Sequence[int]]) -> Any:
    import torch

    ids, mask = padded(batch)
    out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    return out.logits[:, 0]


def window_logits(model: Any, flat: Sequence[list[int]], batch: int) -> npt.NDArray[np.float64]:
    """Logits of every window (eval mode, no grad, batches of similar length)."""
    import torch

    out = np.zeros(len(flat))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for idx in length_batches(flat, batch):
            out[idx] = _forward(model, [flat[i] for i in idx]).double().numpy()
    model.train(was_training)
    return out


def score_texts(
    model: Any, tokenizer: WindowTokenizer, texts: Sequence[str], batch: int = 64
) -> npt.NDArray[np.float64]:
    """Each text's fine-tuned logit: the maximum over its windows (torch)."""
    flat, owner = flatten(tokenizer.windows(texts))
    return max_per_text(window_logits(model, flat, batch), owner, len(texts))


def fine_tune(
    model: Any,
    tokenizer: WindowTokenizer,
    texts: Sequence[str],
    labels: Sequence[int],
    groups: Sequence[str],
    cfg: FinetuneConfig = FinetuneConfig(),
    progress: bool = True,
) -> dict[str, Any]:
    """Trains ``model`` in place; returns the mean loss per tenth of the steps and CPU time."""
    import torch
    from rich.progress import Progress

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    per_text = tokenizer.windows(texts)
    weights = row_weights(labels, groups)
    order = [i for _ in range(cfg.epochs) for i in rng.sample(range(len(texts)), len(texts))]
    steps = [order[s : s + cfg.batch] for s in range(0, len(order), cfg.batch)]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(1, int(cfg.warmup * len(steps)))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (len(steps) - step) / max(1, len(steps) - warm))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    losses: list[float] = []
    started = time.process_time()
    model.train()
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("fine-tune", total=len(steps))
        for rows in steps:
            chosen = _chosen_windows(model, [per_text[i] for i in rows], cfg.score_batch)
            logits = _forward(model, chosen)
            y = torch.tensor([float(labels[i]) for i in rows])
            w = torch.from_numpy(weights[rows])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, w)
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            sched.step()
            opt.zero_grad()
            losses.append(float(loss.detach()))
            bar.advance(task)
    model.eval()
    tenth = max(1, len(losses) // 10)
    curve = [round(float(np.mean(losses[s : s + tenth])), 4) for s in range(0, len(losses), tenth)]
    return {"steps": len(steps), "loss": curve, "cpu_seconds": round(time.process_time() - started)}


def _chosen_windows(model: Any, per_row: Sequence[list[list[int]]], batch: int) -> list[list[int]]:
    """Each row's highest-scoring window under the current weights (its only one if short)."""
    many = [i for i, wins in enumerate(per_row) if len(wins) > 1]
    chosen = [wins[0] for wins in per_row]
    if many:
        flat, owner = flatten([per_row[i] for i in many])
        logits = window_logits(model, flat, batch)
        best: dict[int, tuple[float, int]] = {}
        for j, (o, z) in enumerate(zip(owner, logits, strict=True)):
            if o not in best or z > best[o][0]:
                best[o] = (float(z), j)
        for k, i in enumerate(many):
            chosen[i] = flat[best[k][1]]
    return chosen
