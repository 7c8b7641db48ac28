"""Scanning the PII patterns only at candidate starts finds exactly what ``finditer`` finds.

The finders of :mod:`paramstack.guard.pii_patterns` try their regexes only where a match can
start (:mod:`paramstack.guard.pii_starts`) and skip the date scan when no birth word is in the
text. Here every finder runs twice on the same texts, once as shipped and once with ``scan``
replaced by plain ``finditer`` and the birth-word gate off; the spans must be identical. The
texts: PII eval sets 1-3, the injection prompt files, the Turkish toxicity frames, the bench's
English samples, and random texts built from the pieces the candidate rules reason about
(digit runs of every length, ``+ ( ) : @ . -``, month names, birth and phone words, Unicode
digits) so that boundary cases are hit thousands of times.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator

import pytest
import yaml

from paramstack.guard import pii_patterns
from paramstack.guard.datasets import CONFIG_DIR, seed_prompts
from paramstack.guard.evaluate import pii_examples
from paramstack.guard.pii_evalset import pii_examples_v2
from paramstack.guard.pii_evalset_v3 import pii_examples_v3
from paramstack.guard.pii_starts import Starts, scan
from paramstack.guard.textnorm import fold
from paramstack.guard.toxicity_data import turkish_frames

_PIECES = [
    *"0123456789",
    *[str(random.Random(n).randint(0, 10**n)) for n in range(1, 20)],
    *" .-+():@,/x_%",
    *["ext", "ext.", "TR", "DE89", "GB", "a", "Z", "\u0663", "\U0001d7d8", "\n", "  "],
    *["may", "Mar.", "march", "sept", "september", "ocak", "jan", "dec.", "xmay", "mayis"],
    *["1987", "2020", ", ", " 5 ", " 12, ", "31.", "may 5 1999", "Sept. 30, 2001", "4 ocak 1990"],
    *["born ", "dob ", "date of birth", "doğum tarihi", "d. t.", "dogumlu", "birthday"],
    *["ssn ", "social security", "tel ", "phone: ", "vkn ", "+90", "0090", "(212)", "::1"],
    *["user.name", "@example.com", "x@y.co", "dead:beef", "fe80::", "192.168.", "25"],
]


def _random_texts(n: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 40))) for _ in range(n)]


def _texts() -> list[str]:
    texts = [t for t, _ in pii_examples() + pii_examples_v2() + pii_examples_v3()]
    for name in ("injection_seed", "injection_en", "injection_tr", "injection_fresh"):
        texts += [row.text for row in seed_prompts(CONFIG_DIR / f"{name}.yaml")]
    texts += [row.text for row in turkish_frames()]
    samples = yaml.safe_load((CONFIG_DIR / "latency_samples.yaml").read_text(encoding="utf-8"))
    texts += list(samples.values())  # the latency bench's 1 kB English texts
    # Eval-set texts cut and glued at random places: PII next to other PII and to noise.
    rng = random.Random(3)
    pool = texts[:]
    for _ in range(3000):
        a, b = rng.choice(pool), rng.choice(pool)
        texts.append(
            a[rng.randint(0, len(a)) :] + rng.choice(_PIECES) + b[: rng.randint(0, len(b))]
        )
    return texts + _random_texts(6000)


def _finditer(
    pattern: re.Pattern[str], text: str, starts: Iterable[int]
) -> Iterator[re.Match[str]]:
    list(starts)  # the candidates must still be computable
    return pattern.finditer(text)


def _spans(texts: list[str]) -> list[list[pii_patterns.Span]]:
    return [
        [s for finder in pii_patterns.FINDERS.values() for s in finder(t, fold(t), Starts(t))]
        for t in texts
    ]


def test_every_finder_finds_the_same_spans_as_finditer(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _texts()
    fast = _spans(texts)
    monkeypatch.setattr(pii_patterns, "scan", _finditer)
    monkeypatch.setattr(pii_patterns, "_BIRTH_BEFORE", None)  # None: may match anything
    monkeypatch.setattr(pii_patterns, "_BIRTH_AFTER", None)
    slow = _spans(texts)
    assert fast == slow
    found = {s.entity for spans in slow for s in spans}
    assert found == set(pii_patterns.FINDERS)  # every finder had matches to compare
    assert sum(map(len, slow)) > 3000


def test_scan_is_finditer_restricted_to_the_candidates() -> None:
    pattern = re.compile(r"(?<!\d)\d{2}")
    text = "a123 45 6 7890"
    every = [m.span() for m in pattern.finditer(text)]
    assert [m.span() for m in scan(pattern, text, range(len(text)))] == every
    assert [m.span() for m in scan(pattern, text, [10, 1, 1, 5])] == every
    assert [m.span() for m in scan(pattern, text, [2])] == []  # lookbehind sees before pos


def test_email_starts_are_the_local_part_runs() -> None:
    text = "to: ali.veli@x.com, " + "a" * 70 + "@x.com and @x.com"
    assert Starts(text).email_starts() == [4]  # too long a local part, and none at all
    assert Starts("é+x@y.co").email_starts() == [0]


def test_fold_keeps_the_digit_runs() -> None:
    """The date finder scans the fold but takes its digit runs from the text: ``fold`` must
    keep the length and map digits to digits and non-digits to non-digits."""
    every = "".join(chr(cp) for cp in range(0x110000))
    folded = fold(every)
    assert len(folded) == len(every)
    digit = re.compile(r"\d")
    changed = [
        hex(i)
        for i, (a, b) in enumerate(zip(every, folded, strict=True))
        if bool(digit.match(a)) != bool(digit.match(b))
    ]
    assert changed == []
