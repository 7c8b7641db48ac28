"""``paramstack rlaif``: preference pairs scored by a judge (RLAIF)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from paramstack.cli.context import console, print_json

app = typer.Typer(help="RLAIF preference pairs.", no_args_is_help=True)


@app.command()
def generate(
    config: Annotated[Path | None, typer.Option("--config", help="YAML config.")] = None,
    section: Annotated[str | None, typer.Option(help="Section of the YAML (rlaif).")] = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides.")] = None,
) -> None:
    """Sample answers at several temperatures, judge them, write best/worst pairs (resumable)."""
    from paramstack.train.config import load_config
    from paramstack.train.rlaif import RlaifConfig, cost_estimate, generate_pairs, load_prompts

    cfg = load_config(RlaifConfig, config, overrides, section=section)
    print_json(dataclasses.asdict(cfg))
    estimate = cost_estimate(cfg, load_prompts(Path(cfg.prompts), cfg.max_prompts))
    label = "OFFLINE RUBRIC JUDGE (heuristic, not a model)" if cfg.judge == "rubric" else cfg.judge
    console.print(
        f"judge: {label}; estimated {estimate['judge_calls']:.0f} judge calls, "
        f"{estimate['judge_tokens_in']:.0f} input + {estimate['judge_tokens_out']:.0f} output "
        f"tokens, cost ${estimate['usd']:.4f}"
    )
    with Progress(
        TextColumn("[bold]rlaif"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console,
    ) as bar:  # fmt: skip
        task = bar.add_task("rlaif", total=None)
        stats = generate_pairs(
            cfg, progress=lambda n, total: bar.update(task, completed=n, total=total)
        )
    console.print(
        f"{stats['written']} new pairs ({stats['skipped']} already done) → {cfg.out}; "
        f"judge {stats['judge']}"
    )
