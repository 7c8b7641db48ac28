"""Verdicts of recently scanned prompts, so a text sent again is not scanned again.

Chat clients resend the system prompt and the whole conversation with every turn, and
retrieval resends the same chunks: without this the guard's cost per request grows with the
history, and a 2 kB system prompt costs about a millisecond on every call. A verdict holds
the decision, the findings (offsets, never text), the mask spans, or the rule that blocked —
so a cached prompt is masked in the caller's own session exactly as a fresh scan would be.

Keys are BLAKE2b digests of (scope, document flag, text): no prompt text is kept. The scope is
the tenant, so one tenant cannot tell from the timing whether another sent a text. Only whole
prompts are cached; answers and stream windows rarely repeat.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

from paramstack.errors import GuardBlocked
from paramstack.guard.findings import Decision, Finding
from paramstack.guard.pii_patterns import Span


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    findings: tuple[Finding, ...] = ()
    warnings: tuple[str, ...] = ()
    spans: tuple[Span, ...] = ()
    blocked: tuple[str, str] | None = None  # (check, rule) when the prompt was blocked

    @classmethod
    def of_block(cls, exc: GuardBlocked) -> Verdict:
        return cls(Decision.ALLOW, blocked=(exc.check, exc.rule))


class VerdictCache:
    """A bounded LRU of verdicts; safe to share between threads (the guard may run in one)."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self.hits = 0
        self.misses = 0
        self._store: OrderedDict[bytes, Verdict] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(text: str, scope: str, data: bool) -> bytes:
        digest = hashlib.blake2b(digest_size=16, person=b"guard-verdict")
        digest.update(scope.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00\x01" if data else b"\x00\x00")
        digest.update(text.encode("utf-8", "surrogatepass"))
        return digest.digest()

    def get(self, key: bytes) -> Verdict | None:
        with self._lock:
            found = self._store.get(key)
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
                self._store.move_to_end(key)
            return found

    def put(self, key: bytes, verdict: Verdict) -> None:
        with self._lock:
            self._store[key] = verdict
            if len(self._store) > self.entries:
                self._store.popitem(last=False)

    def __len__(self) -> int:
        return len(self._store)
