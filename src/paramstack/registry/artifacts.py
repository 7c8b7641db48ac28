"""Content-addressed copies of registered artifacts, so a file cannot change under the registry."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file, or of a directory (hash over relative names and file hashes)."""
    if path.is_file():
        return sha256_file(path), path.stat().st_size
    digest = hashlib.sha256()
    size = 0
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(bytes.fromhex(sha256_file(file)))
        size += file.stat().st_size
    return digest.hexdigest(), size


def store_artifact(source: Path, root: Path, name: str, version: int) -> Path:
    """Copy ``source`` to ``root/name/v<version>/``; the copy is what the gateway serves."""
    target_dir = root / name / f"v{version}"
    if target_dir.exists():
        shutil.rmtree(target_dir)
    target_dir.mkdir(parents=True)
    target = target_dir / source.name
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)
    return target.resolve()


def write_meta(artifact: Path, meta: dict[str, Any]) -> Path:
    """The artifact's story beside it (``meta.json``), same content as the registry row."""
    path = artifact.parent / "meta.json"
    path.write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    return path
