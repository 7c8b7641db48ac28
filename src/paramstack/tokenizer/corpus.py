"""Read the ``{"id","text","source"}`` JSONL folders that ``data sample``/``data clean`` write."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from paramstack.errors import InvalidInput


def jsonl_files(folder: Path) -> list[Path]:
    files = [folder] if folder.is_file() else sorted(folder.rglob("*.jsonl"))
    if not files:
        raise InvalidInput(f"no .jsonl files under {folder}", param="input")
    return files


def texts(folders: Sequence[Path]) -> Iterator[str]:
    """Every document's text, in file order."""
    for folder in folders:
        for path in jsonl_files(folder):
            with path.open(encoding="utf-8") as f:
                for n, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    try:
                        text = json.loads(line)["text"]
                    except (json.JSONDecodeError, KeyError, TypeError) as exc:
                        raise InvalidInput(
                            f"{path}:{n}: not a JSON row with a 'text' field", param="input"
                        ) from exc
                    yield str(text)
