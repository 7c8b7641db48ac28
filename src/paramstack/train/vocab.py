"""Extend a base tokenizer with whole-word pieces of the project's own SentencePiece model.

Only pieces the base splits into many tokens are worth a row: each new token gets an embedding
initialised to the mean of the rows it replaces (so the model starts where it was) and those
rows are trained through PEFT's ``trainable_token_indices``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paramstack.errors import InvalidInput

WORD_START = "\u2581"  # SentencePiece's word-boundary marker


def candidate_pieces(
    spm_path: Path, tokenizer: Any, *, max_new: int, min_split: int = 3
) -> list[str]:
    """Word-initial pieces (letters only) the base tokenizer cuts into >= ``min_split`` parts."""
    import sentencepiece as spm

    if not Path(spm_path).is_file():
        raise InvalidInput(f"tokenizer model not found: {spm_path}", param="extend_vocab")
    proc = spm.SentencePieceProcessor(model_file=str(spm_path))
    vocab = tokenizer.get_vocab()
    chosen: list[str] = []
    for i in range(proc.get_piece_size()):
        piece = proc.id_to_piece(i)
        word = piece[1:] if piece.startswith(WORD_START) else ""
        if len(word) < 4 or not word.isalpha() or word in vocab or word in chosen:
            continue
        if len(tokenizer(" " + word, add_special_tokens=False)["input_ids"]) >= min_split:
            chosen.append(word)
        if len(chosen) >= max_new:
            break
    return chosen


def extend_vocabulary(model: Any, tokenizer: Any, words: list[str]) -> list[int]:
    """Add ``words`` as whole-word tokens; returns their ids (empty when nothing was added)."""
    import torch
    from transformers import AddedToken

    if not words:
        return []
    pieces = [tokenizer(" " + w, add_special_tokens=False)["input_ids"] for w in words]
    added = tokenizer.add_tokens([AddedToken(w, single_word=True) for w in words])
    if added == 0:
        return []
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    ids = tokenizer.convert_tokens_to_ids(words)
    weight = model.get_input_embeddings().weight
    with torch.no_grad():
        for new_id, old_ids in zip(ids, pieces, strict=True):
            weight[new_id] = weight[old_ids].mean(dim=0)
    return [int(i) for i in ids]


def match_vocab_size(model: Any, tokenizer: Any) -> None:
    """A base loaded for an adapter trained with an extended vocabulary needs the same rows."""
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
