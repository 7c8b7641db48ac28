"""SFT throughput: paramstack's TRL SFTTrainer path vs a plain transformers ``Trainer``.

Both train the same LoRA (same rank, targets, seed) on the same base and the same chat
examples, with the same batch size, max length and number of steps, in this one process, and
count the non-padding input tokens they push through. Prints tokens/s for each and the ratio
(target >= 1.0x). Usage::

    PYTHONPATH=src .venv/bin/python bench/sft.py --steps 12 --base <model dir>
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from paramstack.train.chat_data import build_sft_examples, load_chat_file, write_jsonl
from paramstack.train.sft import SftConfig, build_trainer


def corpus_rows(n: int) -> list[str]:
    from tests.llm_support import PARAGRAPHS

    return (PARAGRAPHS * (n // len(PARAGRAPHS) + 1))[:n]


def baseline(cfg: SftConfig, base: str, out: Path) -> tuple[float, float]:
    """Plain Trainer: chat template, prompt tokens masked out of the loss, dynamic padding."""
    import torch
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from paramstack.llm.base_model import load_causal_lm
    from paramstack.train import trainer_support as ts

    model, tok = load_causal_lm(base)
    model.train()
    model = get_peft_model(
        model, ts.lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.target_modules)
    )
    rows = []
    for msgs in load_chat_file(Path(cfg.data)):
        prompt = tok.apply_chat_template(msgs[:-1], add_generation_prompt=True, tokenize=False)
        full = tok.apply_chat_template(msgs, tokenize=False)
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        ids = tok(full, add_special_tokens=False)["input_ids"][: cfg.max_length]
        labels = [-100] * min(len(p_ids), len(ids)) + ids[len(p_ids) :]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    args = TrainingArguments(**ts.common_args(cfg, out))
    trainer = Trainer(
        model=model, args=args, train_dataset=Dataset.from_list(rows),
        data_collator=DataCollatorForSeq2Seq(tok, padding=True),
    )  # fmt: skip
    ts.quiet_trainer(trainer)
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    return float(trainer.state.num_input_tokens_seen), seconds


def ours(cfg: SftConfig, base: str, out: Path) -> tuple[float, float]:
    trainer, _ = build_trainer(cfg, base, out, [])
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    return float(trainer.state.num_input_tokens_seen), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="base model directory or hub id")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seed = load_chat_file(Path(__file__).parents[1] / "configs/train/seed_tr_en.jsonl")
        train, _ = build_sft_examples(
            corpus_rows(60), seed, max_examples=80, heldout_fraction=0.0, seed=0
        )
        write_jsonl(root / "train.jsonl", train)
        cfg = SftConfig(
            base_model=args.base, data=str(root / "train.jsonl"), out_dir=str(root / "ours"),
            max_steps=args.steps, batch_size=args.batch, max_length=args.max_length,
            save_steps=10_000, mlflow=False, lora_r=16, lora_alpha=32,
        )  # fmt: skip
        results: dict[str, Any] = {}
        for name, job in (("transformers Trainer", baseline), ("paramstack SFT (TRL)", ours)):
            tokens, seconds = job(cfg, args.base, root / name.split()[0])
            rate = results[name] = tokens / seconds
            print(f"{name:24s} {tokens:8.0f} tokens in {seconds:6.1f} s = {rate:7.1f} tok/s")
        ratio = results["paramstack SFT (TRL)"] / results["transformers Trainer"]
        print(f"ratio paramstack / baseline: {ratio:.2f}x (target >= 1.0x)")


if __name__ == "__main__":
    main()
