"""A tiny BERT (1 layer, random weights) with a WordPiece tokenizer over given words: the
stand-in for all-MiniLM-L6-v2 in tests of code that exports, runs or fine-tunes an encoder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def save_tiny_bert(
    folder: Path, words: Sequence[str], *, max_positions: int = 128, cls_sep: bool = False
) -> Path:
    """``folder`` as a Hugging Face model folder; ``cls_sep``: the tokenizer adds ``[CLS]`` /
    ``[SEP]`` itself (as MiniLM's does), else the caller frames its windows."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel

    vocab = {
        w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *dict.fromkeys(words)])
    }
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    if cls_sep:
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
        )
    folder.mkdir(parents=True)
    tok.save(str(folder / "tokenizer.json"))
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=max_positions,
    )
    BertModel(cfg).eval().save_pretrained(str(folder))
    return folder
