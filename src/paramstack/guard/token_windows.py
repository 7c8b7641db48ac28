"""Token windows for the fine-tuned injection classifier (shared by training and serving).

MiniLM reads at most 128 tokens per pass, and an injection buried in a long document is
exactly what the n-gram model misses, so a long text is read as overlapping windows and its
score is the maximum over them (round 6 in ``docs/guard-injection.md``). Torch-free: the
gateway cuts windows the same way before onnxruntime scores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class WindowConfig:
    """128 tokens per window with ``[CLS]``/``[SEP]``; a new window every ``stride`` tokens;
    over ``max_windows`` the first and last halves are kept."""

    max_tokens: int = 128
    stride: int = 96
    max_windows: int = 8


def cut(ids: Sequence[int], cls: int, sep: int, cfg: WindowConfig) -> list[list[int]]:
    """``[CLS] window [SEP]`` id lists covering ``ids`` (content tokens, no specials)."""
    width = cfg.max_tokens - 2
    if len(ids) <= width:
        return [[cls, *ids, sep]]
    starts = sorted({*range(0, len(ids) - width, cfg.stride), len(ids) - width})
    if len(starts) > cfg.max_windows:
        half = cfg.max_windows // 2
        starts = starts[:half] + starts[-(cfg.max_windows - half) :]
    return [[cls, *ids[s : s + width], sep] for s in starts]


class WindowTokenizer:
    """A ``tokenizers`` WordPiece tokenizer (``tokenizer.json``) that returns the windows of
    each text; truncation and padding in the file are switched off."""

    def __init__(self, path: Path, cfg: WindowConfig = WindowConfig()) -> None:
        from tokenizers import Tokenizer

        self.tokenizer: Any = Tokenizer.from_file(str(path))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.cfg = cfg
        cls, sep = self.tokenizer.token_to_id("[CLS]"), self.tokenizer.token_to_id("[SEP]")
        if cls is None or sep is None:
            raise ValueError(f"{path}: no [CLS] / [SEP] token (not a BERT WordPiece tokenizer)")
        self.cls, self.sep = int(cls), int(sep)

    def windows(self, texts: Sequence[str]) -> list[list[list[int]]]:
        """Per text, its windows' id lists."""
        encs = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [cut(e.ids, self.cls, self.sep, self.cfg) for e in encs]


def flatten(per_text: Sequence[Sequence[list[int]]]) -> tuple[list[list[int]], list[int]]:
    """All windows in one list, and the index of the text each came from."""
    flat: list[list[int]] = []
    owner: list[int] = []
    for i, wins in enumerate(per_text):
        flat.extend(wins)
        owner.extend([i] * len(wins))
    return flat, owner


def padded(batch: Sequence[Sequence[int]]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``input_ids`` and ``attention_mask`` of a batch, padded with 0 to its longest window."""
    width = max(len(w) for w in batch)
    ids = np.zeros((len(batch), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, w in enumerate(batch):
        ids[row, : len(w)] = w
        mask[row, : len(w)] = 1
    return ids, mask


def max_per_text(
    logits: Sequence[float] | npt.NDArray[np.float64], owner: Sequence[int], n: int
) -> npt.NDArray[np.float64]:
    """Each text's maximum window logit."""
    out = np.full(n, -np.inf)
    np.maximum.at(out, np.asarray(owner, dtype=np.int64), np.asarray(logits, dtype=np.float64))
    return out


def length_batches(flat: Sequence[Sequence[int]], size: int) -> list[list[int]]:
    """Window indices in batches of similar length (little padding)."""
    order = sorted(range(len(flat)), key=lambda i: len(flat[i]))
    return [order[s : s + size] for s in range(0, len(order), size)]
