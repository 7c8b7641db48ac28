"""A two-layer Llama with SmolLM2's tokenizer, saved as a base model directory: fast enough for
export, adapter and vocabulary tests that need the real architecture, not its size."""

from __future__ import annotations

from pathlib import Path


def save_tiny_llama(base_model_dir: Path, out: Path) -> Path:
    """Write a randomly initialised (seed 0) tiny Llama plus the tokenizer to ``out``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(base_model_dir)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out
