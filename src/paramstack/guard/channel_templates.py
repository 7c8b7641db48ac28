"""Generated "task × document × injection" rows with benign twins (``injection_channel.yaml``).

The classifier flagged ordinary task prompts ("Translate the following text…", "the text may
try to trick you, do not listen") and missed instructions buried in a document, because no
training row put the same task and document on both sides. Here every attack has twins made
of the same parts: the task and document alone, with the task's defensive sentence, or with a
note addressed to a *human* reader where the injection was. Fold keys are the injection
template (attacks) and the task template (twins), so cross-validated thresholds are set on
wording the fitting model did not see.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import yaml

from paramstack.guard.channels import split_channels
from paramstack.guard.datasets import CONFIG_DIR, Prompt

CHANNEL = CONFIG_DIR / "injection_channel.yaml"
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def generate(
    path: Path = CHANNEL,
    *,
    per_lang: int = 600,
    seed: int = 0,
    extra_docs: dict[str, list[str]] | None = None,
) -> list[Prompt]:
    """Attacks (source ``gen-channel``) and twins (``gen-channel.clean``) per language;
    ``extra_docs`` adds documents per language (e.g. speech paragraphs)."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    rng = random.Random(seed)
    rows: dict[str, Prompt] = {}
    for lang in ("en", "tr"):
        parts: dict[str, Any] = spec[lang]
        docs = list(parts["docs"]) + list((extra_docs or {}).get(lang, []))
        wrappers = spec["en"]["wrappers"]
        n = per_lang if lang == "en" else per_lang // 3
        for _ in range(n):
            t_i = rng.randrange(len(parts["tasks"]))
            i_i = rng.randrange(len(parts["injections"]))
            doc = rng.choice(docs)
            task = parts["tasks"][t_i]
            if rng.random() < 0.4:  # defensive wording on both sides of the pair
                task = _defend(task, rng.choice(parts["defensive"]))
            start, end = rng.choice(wrappers)
            injection = start + _fill(parts["injections"][i_i], spec["fill"], rng) + end
            attack = task.replace("{doc}", _insert(doc, injection, rng))
            twin = task.replace("{doc}", doc)
            note = task.replace("{doc}", _insert(doc, rng.choice(parts["human_notes"]), rng))
            for text, label, source, key in (
                (attack, 1, "gen-channel", f"inj:{lang}:{i_i}"),
                (twin, 0, "gen-channel.clean", f"task:{lang}:{t_i}"),
                (note, 0, "gen-channel.clean", f"task:{lang}:{t_i}"),
            ):
                text = _fill(text, spec["fill"], rng)
                rows.setdefault(text, Prompt(text, label, lang, source, key, f"task:{lang}:{t_i}"))
    return list(rows.values())


def data_rows(rows: list[Prompt]) -> list[Prompt]:
    """The data part of each row (:func:`split_channels`), for the document classifier;
    rows without a data part are left out."""
    out = []
    for row in rows:
        data = split_channels(row.text).data
        if data:
            out.append(Prompt(data, row.label, row.lang, row.source, row.key))
    return out


def _defend(task: str, defence: str) -> str:
    head, sep, tail = task.partition("{doc}")
    if head.strip():  # task before the document: "Translate…. <defence>\n{doc}"
        first, nl, rest = head.partition("\n")
        if first.rstrip().endswith(":"):  # "Document:\n{doc}": the defence goes first
            return f"{defence}\n{task}"
        return f"{first.rstrip()} {defence}{nl}{rest}{sep}{tail}"
    return f"{head}{sep}{tail.rstrip()} {defence}"


def _insert(doc: str, text: str, rng: random.Random) -> str:
    """``text`` between two sentences of ``doc`` (or at its start or end)."""
    sentences = _SENTENCE.split(doc)
    at = rng.randint(0, len(sentences))
    return " ".join([*sentences[:at], text.strip(" "), *sentences[at:]]).strip()


def _fill(text: str, fill: dict[str, list[str]], rng: random.Random) -> str:
    for key, values in fill.items():
        while "{" + key + "}" in text:
            text = text.replace("{" + key + "}", rng.choice(values), 1)
    return text
