"""Reference tokenizers available offline, fetched from the package index into a cache.

* Mistral v1 (Mistral-7B SentencePiece, 32k): ``mistral-common`` wheel;
* Llama-2 (SentencePiece BPE, 32k), Llama-3 (128k), Qwen2 (152k): vocabulary-only GGUF files
  in the ``llama-cpp-python`` sdist, converted once by transformers (tens of seconds each)
  and cached as ``tokenizer.json`` so later runs load in a second;
* GPT-2 (r50k): ``gpt2.tiktoken`` in the ``openai-whisper`` sdist, loaded by tiktoken.

Archives are downloaded with ``pip download --no-deps`` and only the needed files extracted;
nothing is installed or imported from them.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paramstack.errors import InvalidInput
from paramstack.wheel_data import fetch_wheels

MISTRAL_WHEEL = "mistral-common==1.13.1"
LLAMA_CPP_SDIST = "llama-cpp-python==0.3.36"
WHISPER_SDIST = "openai-whisper==20250625"
_GGUF_DIR = "vendor/llama.cpp/models"
GGUF = {"llama-2": "ggml-vocab-llama-spm.gguf", "llama-3": "ggml-vocab-llama-bpe.gguf"}
GGUF["qwen2"] = "ggml-vocab-qwen2.gguf"
ALL = ("mistral-v1", "llama-2", "llama-3", "qwen2", "gpt-2")
# GPT-2's pre-tokenisation regex (tiktoken's r50k_base).
_R50K_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@dataclass(frozen=True)
class Tokenizer:
    """Anything that turns texts into ids; ``word_prefix`` is prepended to a lone word so it
    is tokenised as in running text (byte-level BPEs see the space, SentencePiece adds its
    own ``▁``)."""

    name: str
    vocab_size: int
    encode_batch: Callable[[list[str]], list[list[int]]]
    word_prefix: str = " "


def sentencepiece(name: str, model_file: Path) -> Tokenizer:
    import sentencepiece as spm

    proc = spm.SentencePieceProcessor(model_file=str(model_file))
    return Tokenizer(name, proc.vocab_size(), lambda texts: proc.encode(texts), word_prefix="")


def _download_sdist(spec: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    name = spec.split("==")[0].replace("-", "_")
    found = sorted(dest.glob(f"{name}-*.tar.gz"))
    if not found:
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        subprocess.run([*pip, "--quiet", "-d", str(dest), spec], check=True)
        found = sorted(dest.glob(f"{name}-*.tar.gz"))
    if not found:
        raise InvalidInput(f"pip download {spec} produced no sdist", param="reference")
    return found[-1]


def _extract(sdist: Path, suffix: str, dest: Path) -> Path:
    """Extract the one member of ``sdist`` whose path ends with ``suffix``."""
    target = dest / Path(suffix).name
    if target.is_file():
        return target
    with tarfile.open(sdist) as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith(suffix)), None)
        if member is None:
            raise InvalidInput(f"{sdist.name} has no {suffix}", param="reference")
        member.name = target.name
        tar.extract(member, dest, filter="data")
    return target


def _hf(name: str, tok: Any) -> Tokenizer:
    def encode(texts: list[str]) -> list[list[int]]:
        return list(tok(texts, add_special_tokens=False)["input_ids"])

    return Tokenizer(name, len(tok), encode)


def gguf(name: str, cache: Path) -> Tokenizer:
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    converted = cache / "converted" / name / "tokenizer.json"
    if converted.is_file():
        return _hf(name, PreTrainedTokenizerFast(tokenizer_file=str(converted)))
    sdist = _download_sdist(LLAMA_CPP_SDIST, cache / "sdists")
    file = _extract(sdist, f"{_GGUF_DIR}/{GGUF[name]}", cache / "gguf")
    tok = AutoTokenizer.from_pretrained(str(file.parent), gguf_file=file.name)
    tok.save_pretrained(str(converted.parent))
    return _hf(name, tok)


def gpt2_tiktoken(cache: Path) -> Tokenizer:
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    sdist = _download_sdist(WHISPER_SDIST, cache / "sdists")
    file = _extract(sdist, "whisper/assets/gpt2.tiktoken", cache / "tiktoken")
    enc = tiktoken.Encoding(
        name="gpt2",
        pat_str=_R50K_PATTERN,
        mergeable_ranks=load_tiktoken_bpe(str(file)),
        special_tokens={"<|endoftext|>": 50256},
    )
    return Tokenizer("gpt-2", enc.n_vocab, lambda texts: enc.encode_ordinary_batch(texts))


def mistral_v1(cache: Path) -> Tokenizer:
    root = fetch_wheels([MISTRAL_WHEEL], cache / "wheels")
    return sentencepiece("mistral-v1", root / "mistral_common/data/tokenizer.model.v1")


def load_references(names: Sequence[str], cache: Path) -> list[Tokenizer]:
    unknown = sorted(set(names) - set(ALL))
    if unknown:
        raise InvalidInput(
            f"unknown reference tokenizers {unknown}; known: {ALL}", param="reference"
        )
    loaders: dict[str, Callable[[], Tokenizer]] = {
        "mistral-v1": lambda: mistral_v1(cache),
        "gpt-2": lambda: gpt2_tiktoken(cache),
        **{n: (lambda n=n: gguf(n, cache)) for n in GGUF},  # type: ignore[misc]
    }
    return [loaders[n]() for n in names]
