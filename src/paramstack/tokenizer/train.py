"""SentencePiece training with Llama-style conventions.

Defaults follow Llama-2/Mistral so the model drops into the same tooling: ``<unk>``=0,
``<s>``=1, ``</s>``=2, byte fallback (no unknown characters ever), digits split one by one,
identity normalisation (the corpus is normalised by ``data clean``; NFKC here would fold
characters at encode time that the corpus kept), a dummy ``▁`` prefix and whitespace kept.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from paramstack.errors import InvalidInput
from paramstack.tokenizer import hf

# Longest "sentence" SentencePiece accepts by default is 4192 bytes; longer lines are split.
_MAX_LINE_BYTES = 4000
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
MODEL_TYPES = ("unigram", "bpe")


@dataclass(frozen=True)
class TrainConfig:
    vocab_size: int = 32000
    model_type: str = "bpe"
    character_coverage: float = 0.9995
    byte_fallback: bool = True
    split_digits: bool = True
    max_sentence_length: int = 4192
    input_sentence_size: int = 2_000_000
    seed_sentencepiece_size: int = 1_000_000
    num_threads: int = 2


def _lines(texts: Iterable[str]) -> Iterable[str]:
    for text in texts:
        for line in text.split("\n"):
            line = line.strip()
            if not line:
                continue
            if len(line.encode()) <= _MAX_LINE_BYTES:
                yield line
                continue
            yield from (s for s in _SENTENCE_END.split(line) if s)


def _too_small(message: str, cfg: TrainConfig) -> InvalidInput:
    limit = re.search(r"<=\s*(\d+)", message)
    hint = f" (this corpus supports at most {limit.group(1)})" if limit else ""
    return InvalidInput(
        f"the corpus is too small for a vocabulary of {cfg.vocab_size}{hint}: pass a smaller "
        "--vocab-size or more text",
        param="vocab_size",
    )


def train(texts: Iterable[str], out: Path, cfg: TrainConfig) -> dict[str, Any]:
    """Train on ``texts``; writes ``out/tokenizer.model``, the transformers files
    (``tokenizer.json``, ``tokenizer_config.json``, checked to give the same ids) and
    ``out/training.json`` (the settings and corpus size)."""
    import sentencepiece as spm

    if cfg.model_type not in MODEL_TYPES:
        raise InvalidInput(f"--model-type must be one of {MODEL_TYPES}", param="model_type")
    if cfg.vocab_size < 260:
        raise InvalidInput(
            "--vocab-size must be >= 260 (256 byte pieces + specials)", param="vocab_size"
        )
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=out, prefix=".train-") as tmp:
        corpus = Path(tmp) / "corpus.txt"
        n_lines = n_chars = 0
        check: list[str] = []
        with corpus.open("w", encoding="utf-8") as f:
            for line in _lines(texts):
                f.write(line + "\n")
                n_lines += 1
                n_chars += len(line)
                if n_lines % 50 == 1 and len(check) < 200:
                    check.append(line)
        if n_lines == 0:
            raise InvalidInput("the corpus holds no text", param="input")
        prefix = Path(tmp) / "tokenizer"
        try:
            spm.SentencePieceTrainer.train(
                input=str(corpus),
                model_prefix=str(prefix),
                vocab_size=cfg.vocab_size,
                model_type=cfg.model_type,
                character_coverage=cfg.character_coverage,
                byte_fallback=cfg.byte_fallback,
                split_digits=cfg.split_digits,
                max_sentence_length=cfg.max_sentence_length,
                input_sentence_size=cfg.input_sentence_size,
                seed_sentencepiece_size=cfg.seed_sentencepiece_size,
                shuffle_input_sentence=True,
                num_threads=cfg.num_threads,
                unk_id=0,
                bos_id=1,
                eos_id=2,
                pad_id=-1,
                normalization_rule_name="identity",
                add_dummy_prefix=True,
                remove_extra_whitespaces=False,
                allow_whitespace_only_pieces=True,
                minloglevel=2,
            )
        except RuntimeError as exc:
            if "Vocabulary size" in str(exc) or "vocab_size" in str(exc):
                raise _too_small(str(exc), cfg) from exc
            raise
        prefix.with_suffix(".model").replace(out / "tokenizer.model")
    checked = hf.export(out / "tokenizer.model", out, check)
    meta = {
        "format": "sentencepiece",
        "model_file": "tokenizer.model",
        "transformers_files": ["tokenizer.json", "tokenizer_config.json"],
        "transformers_ids_check": checked,
        "config": asdict(cfg),
        "special_tokens": {"unk": "<unk>", "bos": "<s>", "eos": "</s>"},
        "corpus": {"lines": n_lines, "characters": n_chars},
        "seconds": round(time.perf_counter() - start, 2),
    }
    (out / "training.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
