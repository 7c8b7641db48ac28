"""The guard's fast paths (PII gate, shortest-match gates, literal prefilters) never change a
result.

Each gate skips work that cannot find anything: the PII finders on a text without a digit,
``@`` or ``:``; the injection patterns on a text shorter than any of them can match, or
without any of the literals a pattern's matches contain; the cipher variants of a text
shorter than any hint. The constants are derived here from the
compiled regexes, and every eval-set text (PII sets v1-v3, the injection prompt files) plus
short random texts give the same guard result with the gates on and off.
"""

from __future__ import annotations

import random
import re
import re._parser as sre_parser
from pathlib import Path

import pytest

from paramstack.errors import GuardBlocked
from paramstack.guard import decoding, injection, pii
from paramstack.guard.checks import GuardResources
from paramstack.guard.datasets import CONFIG_DIR, seed_prompts
from paramstack.guard.engine import Guard
from paramstack.guard.evaluate import pii_examples
from paramstack.guard.pii_evalset import pii_examples_v2
from paramstack.guard.pii_evalset_v3 import pii_examples_v3
from paramstack.guard.policy import Direction
from paramstack.guard.regex_prefilter import may_match, required_literals
from paramstack.guard.textnorm import deobfuscate, fold

NO_FILES = GuardResources(home=Path("/nonexistent"))


def _shortest(pattern: re.Pattern[str]) -> int:
    return int(sre_parser.parse(pattern.pattern, pattern.flags).getwidth()[0])


def test_shortest_match_constants_come_from_the_regexes() -> None:
    assert min(_shortest(p) for p in injection.PATTERNS.values()) == injection.SHORTEST_MATCH
    assert _shortest(decoding._CIPHER_HINT) == decoding.HINT_SHORTEST


def test_fold_never_creates_a_character_the_pii_gate_looks_for() -> None:
    """``fold`` maps code point by code point; none outside the gate's set lands inside it."""
    every = "".join(chr(cp) for cp in range(0x110000))
    folded = fold(every)
    assert len(folded) == len(every)
    created = [
        hex(i)
        for i, (a, b) in enumerate(zip(every, folded, strict=True))
        if pii.NEEDED.match(b) and not pii.NEEDED.match(a)
    ]
    assert created == []


def _texts() -> list[str]:
    texts = [t for t, _ in pii_examples() + pii_examples_v2() + pii_examples_v3()]
    for name in ("injection_seed", "injection_en", "injection_tr", "injection_fresh"):
        texts += [row.text for row in seed_prompts(CONFIG_DIR / f"{name}.yaml")]
    texts += ["sunucu dead:beef::cafe adresinde", "ab::cd", "mail me: a@b.co"]  # no digit
    rng = random.Random(5)
    pool = "hiokIGNRE1!@$|: .-0٣ﬃİış\u200b\U0001d7d8aé"  # leet, Arabic/maths digits, NFKC growth
    texts += ["".join(rng.choice(pool) for _ in range(rng.randint(0, 9))) for _ in range(3000)]
    return texts


def _outcome(guard: Guard, text: str, direction: Direction) -> object:
    try:
        result = guard.run(text, direction)
    except GuardBlocked as exc:
        return ("blocked", exc.message)
    return (result.text, result.decision, result.findings, result.warnings)


def test_every_eval_text_gives_the_same_result_with_and_without_the_gates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    guard = Guard(resources=NO_FILES)
    texts = _texts()
    assert len(texts) > 4000
    directions = (Direction.INPUT, Direction.OUTPUT)
    gated = [_outcome(guard, t, d) for t in texts for d in directions]
    monkeypatch.setattr(pii, "NEEDED", re.compile(""))  # matches every text: gate off
    monkeypatch.setattr(injection, "SHORTEST_MATCH", 0)
    monkeypatch.setattr(decoding, "HINT_SHORTEST", 0)
    monkeypatch.setattr(injection, "PREFILTERS", None)
    ungated = [_outcome(guard, t, d) for t in texts for d in directions]
    assert gated == ungated
    blocked = sum(1 for o in gated if isinstance(o, tuple) and o[0] == "blocked")
    masked = sum(1 for o in gated if isinstance(o, tuple) and "[" in str(o[0]))
    assert blocked > 100 and masked > 300  # the sets exercise both paths, not only "allow"


@pytest.mark.parametrize(
    ("pattern", "literals"),
    [
        (r"\bignore (?:all|previous) rules", {"ignore "}),  # the longest required run wins
        (r"(?:note|message) to", {"note", "message"}),  # a branch: the union
        (r"abc(?:cd)?ef", {"abc"}),  # an optional part is not required; the longer run wins
        (r"x(?:yz)+w", {"yz"}),  # a repeat taken at least once is required
        (r"(?:a|b*)c", {"c"}),  # one branch requires nothing: the union does not count
        (r"foo(?!bar)", {"foo"}),  # a lookahead requires nothing
        (r"[a-z]+\d", None),  # no literal at all
    ],
)
def test_required_literals_from_the_parse_tree(pattern: str, literals: set[str] | None) -> None:
    found = required_literals(re.compile(pattern))
    assert (set(found) if found is not None else None) == literals
    assert required_literals(re.compile(pattern, re.IGNORECASE)) is None


def test_every_injection_pattern_gets_a_filter_that_its_own_matches_pass() -> None:
    assert injection.PREFILTERS is not None
    assert all(injection.PREFILTERS[name] for name in injection.PATTERNS)
    attacks = [row.text for row in seed_prompts(CONFIG_DIR / "injection_seed.yaml")]
    hits = 0
    for text in attacks:
        norm = deobfuscate(text)
        for name, pattern in injection.PATTERNS.items():
            if pattern.search(norm):
                hits += 1
                assert may_match(injection.PREFILTERS[name], norm), (name, text)
    assert hits > 20
