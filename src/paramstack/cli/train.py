"""``paramstack train``: SFT data, LoRA/QLoRA SFT and DPO for causal language models.

Heavy imports (torch, transformers, TRL) happen inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from paramstack.cli.context import console, print_json, settings

app = typer.Typer(help="Fine-tune causal language models (SFT, DPO).", no_args_is_help=True)
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML config (configs/train/ or params.yaml).")
]
SectionOption = Annotated[
    str | None, typer.Option(help="Read this section of the YAML (e.g. sft in params.yaml).")
]
Overrides = Annotated[list[str] | None, typer.Argument(help="key=value config overrides.")]


def progress_bar(label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        TextColumn("step {task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
        console=console,
    )


def run_with_bar(label: str, total: int, job: Any) -> Any:
    with progress_bar(label) as bar:
        task = bar.add_task(label, total=total, loss=float("nan"))
        return job(
            lambda step, steps, loss: bar.update(task, completed=step, total=steps, loss=loss)
        )


@app.command("sft-data")
def sft_data(
    corpus: Annotated[list[Path], typer.Argument(help="JSONL corpus files or directories.")],
    out: Annotated[Path, typer.Option(help="Output directory (train.jsonl, heldout.jsonl).")],
    seed_set: Annotated[Path, typer.Option(help="Hand-written chat rows.")] = Path(
        "configs/train/seed_tr_en.jsonl"
    ),
    max_examples: Annotated[int, typer.Option(help="Cap on train + held-out examples.")] = 400,
    heldout_fraction: float = 0.1,
    seed: int = 0,
) -> None:
    """Build instruction/response pairs offline: corpus continuation + lead-sentence summary
    tasks plus the seed set (see docs/own-parameters.md)."""
    from paramstack.train.chat_data import (
        build_sft_examples,
        corpus_texts,
        load_chat_file,
        write_jsonl,
    )

    train, heldout = build_sft_examples(
        corpus_texts(corpus), load_chat_file(seed_set),
        max_examples=max_examples, heldout_fraction=heldout_fraction, seed=seed,
    )  # fmt: skip
    n_train = write_jsonl(out / "train.jsonl", train)
    n_heldout = write_jsonl(out / "heldout.jsonl", heldout)
    console.print(f"wrote {n_train} training and {n_heldout} held-out examples to {out}")


@app.command()
def sft(
    config: ConfigOption = None, section: SectionOption = None, overrides: Overrides = None
) -> None:
    """LoRA (or QLoRA on a CUDA GPU) SFT; resumes from the newest checkpoint in out_dir."""
    from paramstack.train.config import load_config
    from paramstack.train.sft import SftConfig, run_sft

    cfg = load_config(SftConfig, config, overrides, section=section)
    console.print("[bold]resolved config[/]")
    print_json(dataclasses.asdict(cfg))
    result = run_with_bar(
        "sft", cfg.max_steps, lambda p: run_sft(cfg, settings=settings(), progress=p)
    )
    console.print(
        f"adapter in {result.adapter_dir}; loss {result.metrics['train_loss']:.4f}; "
        f"{result.metrics['tokens_per_s']:.0f} tokens/s"
        + (f"; MLflow run {result.run_id}" if result.run_id else "")
    )


@app.command()
def dpo(
    config: ConfigOption = None, section: SectionOption = None, overrides: Overrides = None
) -> None:
    """DPO (beta 0.1 by default) with LoRA on RLAIF pairs; reports held-out reward accuracy."""
    from paramstack.train.config import load_config
    from paramstack.train.dpo import DpoConfig, run_dpo

    cfg = load_config(DpoConfig, config, overrides, section=section)
    console.print("[bold]resolved config[/]")
    print_json(dataclasses.asdict(cfg))
    meta = run_with_bar(
        "dpo", cfg.max_steps, lambda p: run_dpo(cfg, settings=settings(), progress=p)
    )
    m = meta["metrics"]
    console.print(
        f"adapter in {Path(cfg.out_dir) / 'adapter'}; held-out reward accuracy "
        f"{m['reward_accuracy']:.3f} (before {m['reward_accuracy_before']:.3f}), "
        f"margin {m['reward_margin']:.4f}"
    )
