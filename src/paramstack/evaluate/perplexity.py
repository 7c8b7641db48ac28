"""Held-out perplexity: exp of the mean next-token loss over every scored token.

Each text is scored on its own (no packing across documents) and truncated to ``max_length``
tokens, so base and adapter see exactly the same tokens when the tokenizer is shared. An
adapter with an extended vocabulary cuts the same text into fewer tokens, which makes
per-token perplexities incomparable; bits per byte (the loss summed over the scored tokens,
over the UTF-8 bytes they spell) is the figure that compares across tokenizers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paramstack.errors import InvalidInput
from paramstack.train.chat_data import read_jsonl


def heldout_texts(path: Path, limit: int | None = None) -> list[str]:
    """``text`` of corpus rows, or the joined turns of chat rows, from JSONL files/dirs."""
    files = sorted(Path(path).glob("*.jsonl")) if Path(path).is_dir() else [Path(path)]
    texts: list[str] = []
    for file in files:
        if not file.is_file():
            raise InvalidInput(f"held-out data not found: {file}", param="heldout")
        for row in read_jsonl(file):
            if isinstance(row.get("text"), str) and row["text"].strip():
                texts.append(row["text"])
            elif isinstance(row.get("messages"), list):
                texts.append("\n".join(str(m.get("content", "")) for m in row["messages"]))
    if not texts:
        raise InvalidInput(f"no held-out texts in {path}", param="heldout")
    return texts[:limit] if limit else texts


def perplexity(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    *,
    max_length: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, float]:
    import torch

    total_nll, total_tokens, total_bytes = 0.0, 0, 0
    model.eval()
    for i, text in enumerate(texts, 1):
        ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length)
        n = int(ids["input_ids"].shape[1]) - 1
        if n < 1:
            continue
        with torch.no_grad():
            out = model(**ids, labels=ids["input_ids"])
        total_nll += float(out.loss) * n
        total_tokens += n
        scored = tokenizer.decode(ids["input_ids"][0, 1:], skip_special_tokens=True)
        total_bytes += len(scored.encode("utf-8"))
        if progress is not None:
            progress(i, len(texts))
    if total_tokens == 0:
        raise InvalidInput("held-out texts are empty after tokenisation", param="heldout")
    mean = total_nll / total_tokens
    return {
        "perplexity": math.exp(mean),
        "nll": mean,
        "tokens": float(total_tokens),
        "bits_per_byte": total_nll / math.log(2) / max(total_bytes, 1),
    }
