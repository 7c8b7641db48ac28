"""``paramstack models``: register, list, show, promote, archive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from paramstack.cli.context import console, print_json, registry_session, settings
from paramstack.errors import InvalidInput
from paramstack.registry import versions as registry
from paramstack.registry.versions import Registration
from paramstack.store.tables import Stage

app = typer.Typer(help="The model registry.", no_args_is_help=True)


def parse_shape(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.replace("x", ",").split(",") if part.strip()]
    except ValueError as exc:
        raise InvalidInput(f"shape {text!r} must be integers like 1,3,32,32 (-1 = any)") from exc


def parse_pairs(pairs: list[str], option: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{option} expects key=value, got {pair!r}", param=option)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def read_meta(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"cannot read metadata file {path}: {exc}") from exc
    if not isinstance(meta, dict):
        raise InvalidInput(f"metadata file {path} must hold a JSON object")
    return meta


@app.command()
def register(
    artifact: Annotated[Path, typer.Argument(help="Model file (.onnx) or directory.")],
    name: Annotated[str, typer.Option(help="Model name.")],
    type: Annotated[
        str, typer.Option(help="onnx, transformers, adapter, gguf, tokenizer.")
    ] = "onnx",
    domain: Annotated[str, typer.Option(help="e.g. vision, health, law.")] = "general",
    description: str = "",
    labels: Annotated[str | None, typer.Option(help="Comma-separated class labels.")] = None,
    input_shape: Annotated[
        str | None, typer.Option(help="Expected input, e.g. -1,3,32,32.")
    ] = None,
    output_shape: Annotated[str | None, typer.Option(help="Expected output, e.g. -1,10.")] = None,
    metric: Annotated[list[str], typer.Option(help="key=value, repeatable.")] = [],  # noqa: B006
    lineage: Annotated[list[str], typer.Option(help="key=value, repeatable.")] = [],  # noqa: B006
    meta: Annotated[
        Path | None, typer.Option(help="A meta.json with metrics, lineage, class_labels.")
    ] = None,
    stage: Annotated[Stage | None, typer.Option(help="Move to this stage right away.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Validate an artifact, copy it into the registry and record it as a new version."""
    cfg = settings()
    extra = read_meta(meta)
    reg = Registration(
        name=name,
        artifact=artifact,
        type=type,
        domain=domain,
        description=description,
        class_labels=labels.split(",") if labels else list(extra.get("class_labels", [])),
        input_shape=parse_shape(input_shape),
        output_shape=parse_shape(output_shape),
        metrics={**extra.get("metrics", {}), **parse_pairs(metric, "--metric")},
        lineage={**extra.get("lineage", {}), **parse_pairs(lineage, "--lineage")},
    )
    with registry_session(cfg) as session:
        version = registry.register(session, reg, cfg.resolved_artifacts_dir)
        if stage is not None and stage != Stage.REGISTERED:
            registry.set_stage(session, name, version.version, stage)
        info = registry.describe(version)
    if as_json:
        print_json(info)
    else:
        console.print(
            f"registered [bold]{name}[/] v{info['version']} ({info['stage']}) "
            f"sha256 {info['sha256'][:12]}… {info['size_bytes']} bytes"
        )


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every model with its versions and stages."""
    with registry_session() as session:
        rows = [registry.describe(v) for m in registry.list_models(session) for v in m.versions]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "version", "type", "domain", "stage", "accuracy", "size", "created")
    for r in rows:
        acc = r["metrics"].get("accuracy")
        table.add_row(
            r["name"], str(r["version"]), r["type"], r["domain"], r["stage"],
            f"{acc:.4f}" if isinstance(acc, int | float) else "-",
            f"{r['size_bytes'] / 1024:.0f} KiB", (r["created_at"] or "")[:19],
        )  # fmt: skip
    console.print(table if rows else "no models registered yet")


@app.command()
def show(
    name: str,
    version: Annotated[int | None, typer.Option(help="Default: newest.")] = None,
    stage: Annotated[Stage | None, typer.Option(help="Newest version in this stage.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One version with its metrics and lineage."""
    with registry_session() as session:
        info = registry.describe(registry.get_version(session, name, version, stage))
    if as_json:
        print_json(info)
        return
    for key, value in info.items():
        console.print(
            f"[bold]{key}[/]: {json.dumps(value) if isinstance(value, dict | list) else value}"
        )


@app.command()
def promote(
    name: str,
    version: int,
    to: Annotated[Stage, typer.Option(help="Target stage.")] = Stage.PRODUCTION,
) -> None:
    """Move a version to staging or production (the previous production version is archived)."""
    with registry_session() as session:
        changed = registry.set_stage(session, name, version, to)
        moved = [(v.version, v.stage.value) for v in changed]
    if not moved:
        console.print(f"{name} v{version} is already {to.value}")
    for number, stage in moved:
        console.print(f"{name} v{number} → {stage}")


@app.command()
def archive(name: str, version: int) -> None:
    """Take a version out of service; the gateway stops serving it within its refresh period."""
    with registry_session() as session:
        registry.set_stage(session, name, version, Stage.ARCHIVED)
    console.print(f"{name} v{version} → archived")
