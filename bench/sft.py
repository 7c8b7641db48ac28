"""SFT throughput: paramstack's TRL SFTTrainer path vs a plain transformers ``Trainer``.

Both train the same LoRA (same rank, targets, seed) on the same base and the same chat
examples, with the same batch size, max length and number of steps, in this one process, and
count the non-padding input tokens they push through. The two arms alternate (``--repeat``
pairs, the order flipped every pair) so a shared machine's load hits both alike; prints
tokens/s and tokens per CPU-second for each run, each pair's ratio and the median ratio
(target >= 1.0x). ``--threads 1`` pins torch to one thread: on an oversubscribed machine two
OpenMP threads wait on each other and both arms run several times slower. Usage::

    PYTHONPATH=src .venv/bin/python bench/sft.py --base <model dir> --repeat 3 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from paramstack.train.chat_data import build_sft_examples, load_chat_file, write_jsonl
from paramstack.train.sft import SftConfig, build_trainer


def corpus_rows(n: int) -> list[str]:
    from tests.llm_support import PARAGRAPHS

    return (PARAGRAPHS * (n // len(PARAGRAPHS) + 1))[:n]


Timing = tuple[float, float, float]  # tokens, wall seconds, CPU seconds


def timed_train(trainer: Any) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.train()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return float(trainer.state.num_input_tokens_seen), wall, cpu


def baseline(cfg: SftConfig, base: str, out: Path) -> Timing:
    """Plain Trainer: chat template, prompt tokens masked out of the loss, dynamic padding;
    the same rows as TRL keeps, so both arms see the same batches."""
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
        if len(p_ids) >= len(ids):  # like TRL: an answer truncated away trains nothing
            continue
        labels = [-100] * min(len(p_ids), len(ids)) + ids[len(p_ids) :]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    args = TrainingArguments(**ts.common_args(cfg, out))
    trainer = Trainer(
        model=model, args=args, train_dataset=Dataset.from_list(rows),
        data_collator=DataCollatorForSeq2Seq(tok, padding=True),
    )  # fmt: skip
    ts.quiet_trainer(trainer)
    torch.manual_seed(cfg.seed)
    return timed_train(trainer)


def ours(cfg: SftConfig, base: str, out: Path) -> Timing:
    trainer, _ = build_trainer(cfg, base, out, [])
    return timed_train(trainer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="base model directory or hub id")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3, help="pairs of runs")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
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
        arms = {"baseline": baseline, "ours": ours}
        labels = {"baseline": "transformers Trainer", "ours": "paramstack SFT (TRL)"}
        ratios, cpu_ratios = [], []
        for pair in range(args.repeat):
            order = ["baseline", "ours"] if pair % 2 == 0 else ["ours", "baseline"]
            got: dict[str, Timing] = {}
            for name in order:
                got[name] = tokens, wall, cpu = arms[name](cfg, args.base, root / f"{name}{pair}")
                print(
                    f"pair {pair} {labels[name]:22s} {tokens:6.0f} tokens {wall:6.1f} s wall "
                    f"{cpu:6.1f} s CPU = {tokens / wall:6.1f} tok/s, {tokens / cpu:6.1f} tok/CPU-s",
                    flush=True,
                )
            (bt, bw, bc), (ot, ow, oc) = got["baseline"], got["ours"]
            ratios.append((ot / ow) / (bt / bw))
            cpu_ratios.append((ot / oc) / (bt / bc))
            print(f"pair {pair} ratio ours/baseline: {ratios[-1]:.2f}x, {cpu_ratios[-1]:.2f}x CPU")
        wall_ratio, cpu_ratio = statistics.median(ratios), statistics.median(cpu_ratios)
        print(
            f"median ratio paramstack / baseline over {args.repeat} pairs: "
            f"{wall_ratio:.2f}x tok/s, {cpu_ratio:.2f}x tok/CPU-s (target >= 1.0x)"
        )


if __name__ == "__main__":
    main()
