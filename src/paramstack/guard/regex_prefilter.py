"""Literal prefilters for slow regexes: strings one of which every match must contain.

Why: the injection patterns are long alternations behind ``\\b`` that Python's ``re`` tries at
every position of the text (≈ 0.5 µs per character for the ten of them), while most texts
contain none of the words a pattern needs. ``str.__contains__`` finds a literal far faster,
so a pattern whose required literals are all absent is skipped without changing any result:
if the regex matched, its match would contain one of them.

The literals come from the compiled pattern's own parse tree (``re._parser``), so they follow
every edit of a pattern: a run of literal characters is required; a group, or a repeat taken
at least once, requires what its body requires; an alternation requires the union of its
branches' requirements (if every branch has one). Anything else (classes, ``.``, anchors,
lookarounds, optional parts) requires nothing, which only ever makes the filter weaker.
Case-insensitive patterns get no filter.
"""

from __future__ import annotations

import re
import re._parser as sre_parser  # type: ignore[import-not-found]
from re._constants import (  # type: ignore[import-not-found]
    BRANCH,
    LITERAL,
    MAX_REPEAT,
    MIN_REPEAT,
    SUBPATTERN,
)
from typing import Any


def required_literals(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Non-empty strings one of which every match of ``pattern`` contains; None if unknown."""
    if pattern.flags & re.IGNORECASE:
        return None
    found = _sequence(sre_parser.parse(pattern.pattern, pattern.flags).data)
    return frozenset(found) if found else None


def _sequence(items: list[tuple[Any, Any]]) -> set[str] | None:
    """The most selective requirement (longest shortest literal) among a sequence's parts."""
    best: set[str] | None = None
    run: list[str] = []

    def consider(candidate: set[str] | None) -> None:
        nonlocal best
        if candidate and (best is None or min(map(len, candidate)) > min(map(len, best))):
            best = candidate

    for op, av in items:
        if op is LITERAL:
            run.append(chr(av))
            continue
        if run:
            consider({"".join(run)})
            run = []
        if op is SUBPATTERN:
            _group, add_flags, _del_flags, body = av
            if not add_flags & re.IGNORECASE:
                consider(_sequence(body.data))
        elif op is BRANCH:
            branches = [_sequence(branch.data) for branch in av[1]]
            if all(branches):
                consider(set().union(*branches))  # type: ignore[arg-type]
        elif op in (MAX_REPEAT, MIN_REPEAT) and av[0] >= 1:
            consider(_sequence(av[2].data))
    if run:
        consider({"".join(run)})
    return best


def may_match(literals: frozenset[str] | None, text: str) -> bool:
    """False only when no match is possible (none of the required literals is in ``text``)."""
    return literals is None or any(literal in text for literal in literals)
