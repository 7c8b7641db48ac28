"""Validate a LoRA adapter directory before it enters the registry, without torch or PEFT.

The registry is part of the serving core, which starts without the training stack, so the
checks read the files directly: PEFT's ``adapter_config.json`` and the safetensors header.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paramstack.errors import InvalidInput

WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
SIDECAR = "paramstack.json"  # written by paramstack.train (base model + lineage)
MAX_HEADER = 100 << 20


@dataclass(frozen=True)
class AdapterInfo:
    base_model: str
    peft_type: str
    rank: int | None
    target_modules: list[str]
    tensors: int
    sidecar: dict[str, Any]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{path.name} is not readable JSON: {exc}", param="artifact") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"{path.name} must hold a JSON object", param="artifact")
    return data


def safetensors_count(path: Path) -> int:
    """Tensors in a safetensors file, from its header (8-byte length + JSON)."""
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise InvalidInput(f"{path.name} is truncated", param="artifact")
        (length,) = struct.unpack("<Q", head)
        if not 0 < length <= MAX_HEADER:
            raise InvalidInput(f"{path.name} is not a safetensors file", param="artifact")
        try:
            header = json.loads(fh.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{path.name} has a corrupt header", param="artifact") from exc
    return sum(1 for key in header if key != "__metadata__")


def inspect_adapter(folder: Path, base_model: str | None = None) -> AdapterInfo:
    """Read and check a PEFT adapter directory; raise InvalidInput saying what is wrong."""
    if not folder.is_dir():
        raise InvalidInput("an adapter artifact must be a directory", param="artifact")
    config_path = folder / "adapter_config.json"
    if not config_path.is_file():
        raise InvalidInput(
            f"{folder.name}: no adapter_config.json (not a PEFT adapter)", param="artifact"
        )
    config = _read_json(config_path)
    peft_type = str(config.get("peft_type", ""))
    if peft_type not in ("LORA", "ADALORA", "LOHA", "LOKR", "IA3"):
        raise InvalidInput(f"{folder.name}: unsupported peft_type {peft_type!r}", param="artifact")
    weights = next((folder / w for w in WEIGHT_FILES if (folder / w).is_file()), None)
    if weights is None:
        raise InvalidInput(
            f"{folder.name}: no adapter weights ({' or '.join(WEIGHT_FILES)})", param="artifact"
        )
    tensors = safetensors_count(weights) if weights.suffix == ".safetensors" else -1
    if tensors == 0:
        raise InvalidInput(f"{weights.name} holds no tensors", param="artifact")
    sidecar = _read_json(folder / SIDECAR) if (folder / SIDECAR).is_file() else {}
    base = base_model or sidecar.get("base_model") or config.get("base_model_name_or_path")
    if not base:
        raise InvalidInput(
            f"{folder.name}: the base model is not recorded; pass lineage base_model=...",
            param="lineage",
        )
    targets = config.get("target_modules") or []
    return AdapterInfo(
        base_model=str(base),
        peft_type=peft_type,
        rank=config.get("r"),
        target_modules=sorted(targets) if isinstance(targets, list) else [str(targets)],
        tensors=tensors,
        sidecar=sidecar,
    )
