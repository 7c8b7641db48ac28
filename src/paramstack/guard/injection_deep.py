"""A wide-and-deep (fastText-style) injection classifier over the linear model's hashed n-grams.

Why: a linear model adds up evidence word by word and cannot express a conjunction such as
"an imperative addressed to the model *and* inside a document". Here every n-gram id owns a
row of an embedding table; the rows are summed over the text and divided by √n like the linear
model's weights. Column 0 of the sum goes straight to the logit (the linear part); the other
columns pass through one ReLU layer. Trained with torch (``guard train-injection --kind
deep``); served with numpy — one gather-and-sum and a small matmul, no torch at serve time.
The file is an ``.npz`` (``kind`` = "deep", table stored as float16), no pickle.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from paramstack.guard.injection_model import (
    FloatArray,
    InjectionModel,
    IntArray,
    TrainConfig,
    balanced_weights,
)


def _empty() -> FloatArray:
    return np.zeros((0, 0), dtype=np.float32)


@dataclass
class DeepInjectionModel(InjectionModel):
    """``table`` (2^bits × (1 + embed)), ``w1`` (embed × hidden), ``b1``, ``w2`` (hidden);
    ``bias`` is the output bias. ``weights`` holds the table's linear column."""

    table: FloatArray = field(default_factory=_empty)
    w1: FloatArray = field(default_factory=_empty)
    b1: FloatArray = field(default_factory=_empty)
    w2: FloatArray = field(default_factory=_empty)

    def id_rows(self, idx: IntArray) -> FloatArray:
        return self.table[idx]

    def logits(self, bags: FloatArray) -> FloatArray:
        hidden = np.maximum(bags[:, 1:] @ self.w1 + self.b1, 0.0)
        out: FloatArray = bags[:, 0] + hidden @ self.w2 + np.float32(self.bias)
        return out

    def score_ids(self, idx: IntArray) -> float:
        if idx.size == 0:
            bag = np.zeros((1, self.table.shape[1]), dtype=np.float32)
        else:
            bag = (self.table[idx].sum(axis=0) / np.float32(np.sqrt(idx.size)))[None, :]
        return float(1 / (1 + np.exp(-float(self.logits(bag)[0]))))

    def save(self, path: Path, meta: dict[str, Any] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        names = sorted(self.lang_thresholds)
        with path.open("wb") as fh:
            np.savez_compressed(
                fh,
                kind=np.array("deep"),
                table=self.table.astype(np.float16),
                w1=self.w1,
                b1=self.b1,
                w2=self.w2,
                bias=np.float64(self.bias),
                orders=np.array(self.orders),
                word_orders=np.array(self.word_orders, dtype=np.int64),
                bits=np.int64(self.bits),
                threshold=np.float64(self.threshold),
                lang_names=np.array(names, dtype="U8"),
                lang_values=np.array([self.lang_thresholds[k] for k in names], dtype=np.float64),
                windows=np.int64(self.windows),
            )
        if meta is not None:
            path.with_suffix(".meta.json").write_text(json.dumps(meta, indent=2, default=str))

    @classmethod
    def from_arrays(cls, data: Any) -> DeepInjectionModel:
        """From an opened ``.npz`` (:meth:`InjectionModel.load` dispatches here)."""
        table = data["table"].astype(np.float32)
        return cls(
            weights=np.ascontiguousarray(table[:, 0]),
            bias=float(data["bias"]),
            orders=tuple(int(x) for x in data["orders"]),
            bits=int(data["bits"]),
            threshold=float(data["threshold"]),
            lang_thresholds={
                str(k): float(v)
                for k, v in zip(data["lang_names"], data["lang_values"], strict=True)
            },
            word_orders=tuple(int(x) for x in data["word_orders"]),
            windows=int(data["windows"]),
            table=table,
            w1=data["w1"].astype(np.float32),
            b1=data["b1"].astype(np.float32),
            w2=data["w2"].astype(np.float32),
        )


@dataclass(frozen=True)
class DeepConfig:
    embed: int = 16
    hidden: int = 64
    epochs: int = 8
    batch: int = 64
    lr: float = 0.01


def fit_deep(
    rows: list[IntArray],
    labels: Sequence[int],
    cfg: TrainConfig,
    groups: Sequence[str],
    deep: DeepConfig = DeepConfig(),
) -> DeepInjectionModel:
    """Minibatch Adam on the (group, label)-balanced logistic loss; the table's gradients are
    sparse (only the rows of a batch's ids). Deterministic for a given ``cfg.seed``."""
    import torch

    torch.manual_seed(cfg.seed)
    dim = 1 << cfg.bits
    bag = torch.nn.EmbeddingBag(dim, 1 + deep.embed, mode="sum", sparse=True)
    with torch.no_grad():
        bag.weight.normal_(0.0, 0.05)
        bag.weight[:, 0] = 0.0
    layer = torch.nn.Linear(deep.embed, deep.hidden)
    out = torch.nn.Linear(deep.hidden, 1)
    sparse_opt = torch.optim.SparseAdam(list(bag.parameters()), lr=deep.lr)
    dense_opt = torch.optim.Adam(
        list(layer.parameters()) + list(out.parameters()), lr=deep.lr, weight_decay=cfg.l2
    )
    y = torch.tensor(np.asarray(labels, dtype=np.float32))
    weight = torch.tensor(balanced_weights(labels, groups) * len(labels))
    tensors = [torch.from_numpy(r) for r in rows]
    rng = np.random.default_rng(cfg.seed)
    for _ in range(deep.epochs):
        for chunk in np.array_split(rng.permutation(len(rows)), max(1, len(rows) // deep.batch)):
            ids = [tensors[i] for i in chunk]
            sizes = torch.tensor([max(len(t), 1) for t in ids], dtype=torch.float32)
            flat = torch.cat(ids) if ids else torch.zeros(0, dtype=torch.int64)
            offsets = torch.tensor(np.concatenate([[0], np.cumsum([len(t) for t in ids])[:-1]]))
            per = torch.repeat_interleave(1 / sizes.sqrt(), torch.tensor([len(t) for t in ids]))
            sums = bag(flat, offsets, per_sample_weights=per)
            hidden = torch.relu(layer(sums[:, 1:]))
            logit = sums[:, 0] + out(hidden).squeeze(1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logit, y[chunk], weight=weight[chunk]
            )
            sparse_opt.zero_grad()
            dense_opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            sparse_opt.step()  # type: ignore[no-untyped-call]
            dense_opt.step()
    table = bag.weight.detach().numpy().astype(np.float16).astype(np.float32)  # as stored
    return DeepInjectionModel(
        weights=np.ascontiguousarray(table[:, 0]),
        bias=float(out.bias.detach()[0]),
        orders=cfg.orders,
        bits=cfg.bits,
        word_orders=cfg.word_orders,
        table=table,
        w1=layer.weight.detach().numpy().T.copy(),
        b1=layer.bias.detach().numpy().copy(),
        w2=out.weight.detach().numpy()[0].copy(),
    )
