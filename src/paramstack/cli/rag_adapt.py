"""``paramstack rag adapt``: a corpus in, an own embedder directory out (``--embedder own:DIR``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from paramstack.cli.context import console, print_json, settings


def adapt_cmd(
    corpus: Annotated[list[Path], typer.Argument(help="JSONL files of passages ({'text': ...}).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Embedder directory to write.")],
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML file of AdaptConfig settings.")
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="key=value over the YAML (repeatable).")
    ] = None,
    text_field: Annotated[str, typer.Option(help="The JSONL field holding the text.")] = "text",
) -> None:
    """Train a dense embedder on a corpus with Inverse-Cloze pairs (sentence -> rest of its
    passage); writes ONNX + tokenizer, checked for parity. Use it as ``--embedder own:OUT``."""
    from paramstack.rag.adapt import AdaptConfig, adapt, read_passages
    from paramstack.train.config import load_config

    cfg = load_config(AdaptConfig, config, overrides)
    texts = read_passages(corpus, text_field)
    bar = Progress(
        TextColumn("[bold]adapt"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeRemainingColumn(),
        console=console,
    )
    with bar:
        task = bar.add_task("adapt", total=None, loss="-")

        def progress(step: int, total: int, loss: float) -> None:
            bar.update(task, completed=step, total=total, loss=f"{loss:.3f}")

        result = adapt(texts, out, cfg, home=settings().home, progress=progress)
    print_json(
        {
            "embedder": f"own:{out}",
            "passages": result.passages,
            "steps": result.steps,
            "final_loss": round(result.final_loss, 4),
            "train_cpu_s": round(result.train_cpu_s, 1),
            "train_wall_s": round(result.train_wall_s, 1),
            "onnx_parity_max_abs": result.parity_max_abs,
            "mlflow_run_id": result.run_id,
        }
    )
