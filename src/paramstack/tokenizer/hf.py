"""Export a SentencePiece model as a transformers tokenizer that gives the *same* ids.

transformers 5 converts a ``tokenizer.model`` on load, but two details differ from
SentencePiece: a unigram model is read as BPE by ``LlamaTokenizer`` (the Llama converter
assumes BPE), and the ``Metaspace`` pre-tokenizer skips the dummy ``▁`` prefix when a text
already starts with a space. The export below converts with the right model class, then
swaps in Llama-1's normaliser (prepend ``▁``, spaces to ``▁``, no pre-tokenizer), which is
what SentencePiece does with ``add_dummy_prefix`` and identity normalisation, and checks the
ids on sample texts before writing ``tokenizer.json`` + ``tokenizer_config.json``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SPECIALS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
_CHECK = ("Merhaba dünya", "  iki  boşluk 12345", " İstanbul'da ışık\tsekme 🙂", "")


def convert(model_file: Path) -> Any:
    """A transformers tokenizer built from a SentencePiece ``.model``."""
    from tokenizers import normalizers
    from transformers import LlamaTokenizer
    from transformers.tokenization_utils_tokenizers import TokenizersBackend

    cls = LlamaTokenizer if _trainer_model_type(model_file) == "bpe" else TokenizersBackend
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(model_file, Path(tmp) / "tokenizer.model")
        tok = cls.from_pretrained(tmp, **SPECIALS)
    backend = tok.backend_tokenizer
    backend.normalizer = normalizers.Sequence(
        [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
    )
    backend.pre_tokenizer = None
    return tok


def _trainer_model_type(model_file: Path) -> str:
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.ParseFromString(model_file.read_bytes())
    return "bpe" if proto.trainer_spec.model_type == pb.TrainerSpec.BPE else "unigram"


def mismatches(model_file: Path, tok: Any, texts: Sequence[str]) -> list[str]:
    """Texts whose ids differ between SentencePiece and ``tok`` (both without BOS/EOS)."""
    import sentencepiece as spm

    proc = spm.SentencePieceProcessor(model_file=str(model_file))
    return [t for t in texts if proc.encode(t) != tok.encode(t, add_special_tokens=False)]


def export(model_file: Path, out: Path, sample: Sequence[str]) -> dict[str, int]:
    """Write the transformers files next to the model; returns how many sample texts were
    checked and how many got different ids. BPE is exact; a unigram model can differ on rare
    ties between equally scored segmentations (float sums differ between the libraries)."""
    tok = convert(model_file)
    texts = [*_CHECK, *sample]
    tok.save_pretrained(str(out))
    return {"checked": len(texts), "different": len(mismatches(model_file, tok, texts))}


def load(folder: Path) -> Any:
    """Load the exported tokenizer exactly as written (``LlamaTokenizerFast`` from the file)."""
    from transformers import LlamaTokenizerFast, PreTrainedTokenizerFast

    file = folder / "tokenizer.json"
    if _trainer_model_type(folder / "tokenizer.model") == "bpe":
        return LlamaTokenizerFast(tokenizer_file=str(file))
    return PreTrainedTokenizerFast(tokenizer_file=str(file), **SPECIALS)
