"""YAML configs with ``key=value`` overrides for the LLM recipes (the ECG job's convention).

Every recipe is a dataclass; a run resolves defaults, then the YAML file, then the command
line, and refuses unknown keys so a typo never silently trains with a default.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

from paramstack.errors import InvalidInput

T = TypeVar("T")


def parse_override(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise InvalidInput(f"override {item!r} is not key=value", param="overrides")
    return key.strip(), yaml.safe_load(raw)


def read_yaml_mapping(path: Path, section: str | None = None) -> dict[str, Any]:
    """A YAML mapping, or one named section of it (``params.yaml`` holds every stage)."""
    if not Path(path).is_file():
        raise InvalidInput(f"config file not found: {path}", param="config")
    loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if section is not None and isinstance(loaded, dict):
        loaded = loaded.get(section, {})
    if not isinstance(loaded, dict):
        raise InvalidInput(f"{path}: expected a mapping of settings", param="config")
    return loaded


def load_config(
    cls: type[T],
    path: Path | None = None,
    overrides: list[str] | None = None,
    *,
    section: str | None = None,
) -> T:
    """Defaults, then the YAML file (or its ``section``), then ``key=value`` overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        values.update(read_yaml_mapping(path, section))
    values.update(dict(parse_override(o) for o in overrides or []))
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidInput(
            f"unknown config keys {', '.join(unknown)}; valid: {', '.join(sorted(known))}",
            param="config",
        )
    try:
        return cls(**values)
    except TypeError as exc:
        raise InvalidInput(f"bad config value: {exc}", param="config") from exc
