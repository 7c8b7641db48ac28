"""A small circuit breaker: stop calling an upstream that keeps failing, probe it again later.

Closed: calls pass; ``failures`` consecutive failed calls (after their retries) open it.
Open: calls fail at once with 503 for ``reset_s``, so a dead upstream costs callers nothing
and is not hammered by retries. Half-open: after ``reset_s`` one probe call passes; its
success closes the breaker, its failure opens it for another ``reset_s``. Single event loop,
so plain attributes suffice (no lock).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from paramstack.errors import Unavailable


class CircuitOpen(Unavailable):
    default_code = "upstream_circuit_open"


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        failures: int = 5,
        reset_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.threshold = max(1, failures)
        self.reset_s = reset_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._probing or self._clock() - self._opened_at >= self.reset_s:
            return "half-open"
        return "open"

    def before_call(self) -> None:
        """Raise ``CircuitOpen`` unless a call may go out now (marks the half-open probe)."""
        if self._opened_at is None:
            return
        if self._probing or self._clock() - self._opened_at < self.reset_s:
            # no upstream name or URL: the message goes to tenants, the URL is internal
            raise CircuitOpen(f"the upstream is failing; calls paused for up to {self.reset_s:g} s")
        self._probing = True

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def record_failure(self) -> None:
        self._failures += 1
        if self._probing or self._failures >= self.threshold:
            self._opened_at = self._clock()
            self._probing = False
