"""The independent held-out sets of session 6: injection (English, Turkish) and Turkish toxicity.

They were written by a helper that never saw the training data or its generators, and no
detector was run on them before the lead's single look. Each file's SHA-256 is pinned here: a
held-out set is worth one honest look, so a file edited afterwards (a label flipped, a missed
row dropped) must fail the load instead of quietly changing the figure.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from paramstack.errors import InvalidInput, ParamstackError
from paramstack.guard.datasets import CONFIG_DIR, Prompt

SOURCE = "indep-s6"
FIELDS = frozenset({"text", "label", "lang", "family", "source"})
FILES = {
    "injection": CONFIG_DIR / "injection_indep.yaml",
    "toxicity": CONFIG_DIR / "toxicity_indep.yaml",
}
LABELS = {"injection": {"attack": 1, "benign": 0}, "toxicity": {"toxic": 1, "benign": 0}}
PINNED = {
    "injection": "4305a85ab7a90f23cebbdf9c94c41b188b08295896de62a33d19dcf8fdd3cd81",
    "toxicity": "cce812ab2a2c5ac4902a67ca0ff09386238dc359a9fdf6bc764a91bb7df31102",
}


class PinMismatch(ParamstackError):
    """A pinned evaluation file differs from the bytes it had when it was pinned."""

    default_code = "pin_mismatch"


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes (comments and layout included: any edit counts)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(kind: str, path: Path | None = None) -> list[Prompt]:
    """Rows of the ``kind`` set (``injection`` / ``toxicity``) as :class:`Prompt`, with source
    ``indep-s6.<family>`` so reports break recall down per family.

    Raises :class:`PinMismatch` when the file's digest is not the pinned one and
    :class:`InvalidInput` when a row lacks a field or has an unknown label.
    """
    if kind not in FILES:
        raise InvalidInput(f"unknown independent set {kind!r}; choose from {sorted(FILES)}")
    target = path or FILES[kind]
    digest = file_digest(target)
    if digest != PINNED[kind]:
        raise PinMismatch(
            f"{target.name} changed since it was pinned (sha256 {digest[:12]}…, pinned "
            f"{PINNED[kind][:12]}…): a held-out set is not edited after it is written"
        )
    data = yaml.safe_load(target.read_text(encoding="utf-8"))
    return [_row(kind, item, i) for i, item in enumerate(data["rows"])]


def _row(kind: str, item: dict[str, Any], index: int) -> Prompt:
    missing = FIELDS - set(item)
    if missing or item["label"] not in LABELS[kind] or item["source"] != SOURCE:
        raise InvalidInput(f"{kind} row {index}: missing {sorted(missing)} or bad label/source")
    label = LABELS[kind][item["label"]]
    return Prompt(str(item["text"]), label, str(item["lang"]), f"{SOURCE}.{item['family']}")
