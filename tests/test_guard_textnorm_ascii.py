"""The ASCII fast path of guard folding gives exactly what the numpy table gives."""

from __future__ import annotations

import random
import string

import pytest

from paramstack.guard import textnorm
from paramstack.guard.textnorm import deobfuscate, fold

ALL_ASCII = "".join(chr(i) for i in range(128))


def _numpy_path(text: str, leet: bool) -> str:
    """Force the general path: a non-ASCII sentinel (mapping is per code point), then drop it."""
    return textnorm._map(text + "é", leet)[:-1]


@pytest.mark.parametrize("leet", [False, True])
def test_every_ascii_code_point_maps_as_the_table_says(leet: bool) -> None:
    fast = textnorm._map(ALL_ASCII, leet)
    assert fast == _numpy_path(ALL_ASCII, leet)
    assert len(fast) == 128 and fast.isascii()


@pytest.mark.parametrize("leet", [False, True])
def test_random_ascii_texts_agree(leet: bool) -> None:
    rng = random.Random(7)
    for _ in range(300):
        text = "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 80)))
        assert textnorm._map(text, leet) == _numpy_path(text, leet)


def test_public_functions_on_ascii_and_turkish() -> None:
    assert fold("IGNORE Previous") == "ignore previous"
    assert deobfuscate("1gn0r3 4ll") == "ignore all"
    assert fold("İSTANBUL ışık") == "istanbul isik"  # non-ASCII: the numpy path, unchanged
    assert fold("A\ud800B") == "a\ud800b"  # a lone surrogate (valid JSON) passes, length kept
