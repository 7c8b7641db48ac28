"""Fertility evaluation: tokens per word, characters per token, share of continued words.

Words are whitespace-separated (punctuation stays attached, as in the published Turkish
fertility figures). Fertility and characters per token come from encoding whole documents;
"continued words" (words split into two or more tokens) from encoding each distinct word once,
with the space a running-text word would carry.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from paramstack.tokenizer.references import Tokenizer

# Published tokens-per-word on Turkish text (issue 7), for the report only.
ANCHORS = {
    "GPT-2": 3.79,
    "Qwen3": 2.62,
    "Mistral-Small": 2.38,
    "Turkcell-7B": 1.92,
    "Kumru": 1.65,
}
BASELINES = ("llama-2", "mistral-v1")
_BATCH = 256


def _encode_all(tok: Tokenizer, texts: Sequence[str]) -> list[list[int]]:
    out: list[list[int]] = []
    for i in range(0, len(texts), _BATCH):
        out.extend(tok.encode_batch(list(texts[i : i + _BATCH])))
    return out


def measure(tok: Tokenizer, docs: Sequence[str]) -> dict[str, float]:
    words = Counter(w for doc in docs for w in doc.split())
    n_words = sum(words.values())
    n_chars = sum(len(doc) for doc in docs)
    n_tokens = sum(len(ids) for ids in _encode_all(tok, docs))
    distinct = list(words)
    lengths = [len(ids) for ids in _encode_all(tok, [tok.word_prefix + w for w in distinct])]
    continued = sum(words[w] for w, n in zip(distinct, lengths, strict=True) if n > 1)
    return {
        "documents": len(docs),
        "words": n_words,
        "characters": n_chars,
        "tokens": n_tokens,
        "fertility": n_tokens / max(n_words, 1),
        "chars_per_token": n_chars / max(n_tokens, 1),
        "continued_words": continued / max(n_words, 1),
    }


def compare(
    ours: Tokenizer, references: Sequence[Tokenizer], heldout: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """Every tokenizer on every held-out set, plus our fertility reduction vs the baselines."""
    rows: list[dict[str, Any]] = []
    for tok in [ours, *references]:
        sets = {name: measure(tok, docs) for name, docs in heldout.items()}
        rows.append({"name": tok.name, "vocab_size": tok.vocab_size, "sets": sets})
    reductions: dict[str, dict[str, float]] = {}
    for row in rows[1:]:
        if row["name"] in BASELINES:
            reductions[row["name"]] = {
                s: 1 - rows[0]["sets"][s]["fertility"] / row["sets"][s]["fertility"]
                for s in heldout
            }
    return {
        "ours": ours.name,
        "heldout_sets": list(heldout),
        "tokenizers": rows,
        "fertility_reduction_vs": reductions,
        "target_reduction": 0.30,
        "published_anchors_tokens_per_word": ANCHORS,
    }


def markdown(report: dict[str, Any]) -> str:
    lines = ["# Tokenizer evaluation", ""]
    for s in report["heldout_sets"]:
        lines += [
            f"## {s}",
            "",
            "| tokenizer | vocab | tokens/word | chars/token | continued words |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for row in report["tokenizers"]:
            m = row["sets"][s]
            lines.append(
                f"| {row['name']} | {row['vocab_size']} | {m['fertility']:.3f} | "
                f"{m['chars_per_token']:.2f} | {m['continued_words']:.1%} |"
            )
        first = report["tokenizers"][0]["sets"][s]
        lines += ["", f"{first['documents']} documents, {first['words']} words.", ""]
    lines += ["## Fertility reduction of ours (target >= 30 %)", ""]
    for name, per_set in report["fertility_reduction_vs"].items():
        cells = ", ".join(f"{s}: {v:.1%}" for s, v in per_set.items())
        lines.append(f"- vs {name}: {cells}")
    anchors = ", ".join(f"{k} {v}" for k, v in report["published_anchors_tokens_per_word"].items())
    lines += ["", f"Published Turkish tokens per word (other texts): {anchors}.", ""]
    return "\n".join(lines)


def bar_chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [row["name"] for row in report["tokenizers"]]
    sets = report["heldout_sets"]
    x = np.arange(len(names))
    width = 0.8 / len(sets)
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 4))
    for i, s in enumerate(sets):
        values = [row["sets"][s]["fertility"] for row in report["tokenizers"]]
        ax.bar(x + i * width, values, width, label=s)
    ax.set_xticks(x + width * (len(sets) - 1) / 2, names)
    ax.set_ylabel("tokens per word (lower is better)")
    ax.set_title("Turkish fertility on held-out text")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(markdown(report))
    bar_chart(report, out / "fertility.png")
