"""Run a PII regex only where one of its matches can start; same matches as ``finditer``.

Why: every PII pattern begins with a lookbehind, which turns off ``re``'s fast search for the
first character, so ``finditer`` tries a full match at every position of the text (30-140 µs
per kB for each of the 13 patterns; on an English document that was most of the guard's
1 ms budget). Their matches can only start at a few kinds of position (the first digit of a
run of digits, a ``+``, a ``(``, a little before a ``:`` or an ``@``), and those are found
with ``str.find`` and one charset-led regex. :func:`scan` tries ``pattern.match`` at those
positions only, in order, skipping past each match: exactly the matches ``finditer`` returns
as long as the candidates include every position where a match can start (a lookbehind sees
the text before ``pos``). Which candidates each pattern needs is argued next to its finder in
:mod:`paramstack.guard.pii_patterns`; a test compares every pattern with ``finditer``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from itertools import pairwise

_DIGIT_RUN = re.compile(r"\d+")
_LOCAL_TAIL = re.compile(r"[\w.%+-]+\Z")  # an e-mail's local part right before its "@"
LOCAL_MAX = 64  # the longest local part the e-mail pattern accepts


class Starts:
    """Candidate start positions of one text, computed once and shared by every finder."""

    __slots__ = ("_runs", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._runs: list[tuple[int, int]] | None = None

    @property
    def runs(self) -> list[tuple[int, int]]:
        """``(start, end)`` of every maximal run of (Unicode) digits."""
        if self._runs is None:
            self._runs = [m.span() for m in _DIGIT_RUN.finditer(self.text)]
        return self._runs

    def run_starts(
        self, min_len: int = 1, max_len: int | None = None, then: str | None = None
    ) -> list[int]:
        """Starts of the digit runs ``min_len``-``max_len`` long, followed by one of the
        characters of ``then`` when it is given."""
        text, top = self.text, max_len if max_len is not None else len(self.text)
        return [
            s
            for s, e in self.runs
            if min_len <= e - s <= top and (then is None or (e < len(text) and text[e] in then))
        ]

    def colon_pairs(self, within: int) -> list[int]:
        """Every ":" followed by another ":" at most ``within`` characters later."""
        colons = self.chars(":")
        return [c for c, d in pairwise(colons) if d - c <= within]

    def chars(self, char: str) -> list[int]:
        """Every position of ``char`` in the text."""
        found: list[int] = []
        at = self.text.find(char)
        while at >= 0:
            found.append(at)
            at = self.text.find(char, at + 1)
        return found

    def email_starts(self) -> list[int]:
        """For each "@", the start of the run of local-part characters that ends right before
        it: the e-mail pattern's lookbehind forbids another local character before its start,
        and its local part is that whole run (it cannot contain "@"), so it starts there or
        nowhere."""
        starts: list[int] = []
        for at in self.chars("@"):
            tail = _LOCAL_TAIL.search(self.text, max(0, at - LOCAL_MAX - 1), at)
            if tail is not None and tail.end() == at and at - tail.start() <= LOCAL_MAX:
                starts.append(tail.start())
        return starts


def scan(pattern: re.Pattern[str], text: str, starts: Iterable[int]) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text)`` restricted to ``starts`` (any order, duplicates allowed)."""
    end = 0
    for pos in sorted(set(starts)):
        if pos < end or pos < 0:
            continue
        m = pattern.match(text, pos)
        if m is not None:
            yield m
            end = max(m.end(), pos + 1)
