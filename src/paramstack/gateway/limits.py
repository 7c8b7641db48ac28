"""Rate limits (GCRA) and daily token quotas (reserve before, settle after), one interface.

Rate limits use GCRA (the generic cell rate algorithm): one integer per key, the theoretical
arrival time ``tat``. A rule "N per P" has emission interval ``T = ceil(P / N)`` and admits a
request when ``max(tat, now) + T - N*T <= now``, so a burst of exactly N passes, then one per
T. ``T`` is rounded up to whole microseconds, so the long-run rate can only be a hair lower than
N/P, never higher. Every rule of a request is checked first and committed only when all pass:
a request refused by the per-minute rule does not use up the per-second allowance.

Token quotas are per UTC day. ``admit`` reserves the most tokens the request may use (prompt +
max completion) against every quota of the request, all or none; ``settle`` then replaces the
reservation with the real count. Concurrent requests can therefore never overspend: the sum
of settled and still-reserved tokens never exceeds the quota (unless a backend returns more
tokens than it was allowed to, which is recorded as used, truthfully).

``InProcessLimiter`` (here) serves one process: a lock around dict updates, O(1), no I/O.
``LmdbLimiter`` (``limits_lmdb``) runs ``decide`` on state shared by the worker processes of
one host, ``RedisLimiter`` (``limits_redis``) the same algorithm in Lua for N replicas.
All return the same ``Admission`` and raise the same errors, built by ``conclude``.
"""

from __future__ import annotations

import itertools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from paramstack.errors import InvalidInput
from paramstack.gateway.limit_types import (
    DAY_US,
    Admission,
    Outcome,
    QuotaRule,
    RateRule,
    Reservation,
    conclude,
)


class Limiter(Protocol):
    """What the request path calls; both backends implement it."""

    async def admit(
        self, rates: Sequence[RateRule], quotas: Sequence[QuotaRule] = (), tokens: int = 0
    ) -> Admission:
        """Count one request against ``rates`` and reserve ``tokens`` against ``quotas``.

        Raises ``RateLimited`` or ``QuotaExceeded`` (HTTP 429, with headers) and then changes
        nothing. ``Admission.reservation`` must be passed to ``settle`` exactly once.
        """
        ...

    async def settle(self, reservation: Reservation, used_tokens: int) -> None:
        """Replace a reservation with the tokens really used (0 when the call failed early)."""
        ...

    async def aclose(self) -> None: ...


class LimiterSettings(Protocol):
    """The settings fields ``build_limiter`` reads (``paramstack.config.Settings`` has them)."""

    @property
    def limiter_backend(self) -> str: ...

    @property
    def redis_url(self) -> str | None: ...

    @property
    def limiter_key_prefix(self) -> str: ...

    @property
    def quota_reservation_ttl_s(self) -> float: ...

    @property
    def workers(self) -> int: ...

    @property
    def resolved_limiter_path(self) -> Path: ...

    @property
    def limiter_map_mb(self) -> int: ...


def build_limiter(cfg: LimiterSettings) -> Limiter:
    """The configured backend; LMDB and Redis are imported only when chosen.

    In-process counters with several worker processes would enforce the limit once per
    worker (N workers, N times the limit: the bug LiteLLM users keep reporting), so that
    combination is refused rather than silently inexact; ``auto`` picks LMDB instead.
    """
    backend = cfg.limiter_backend
    if backend == "auto":
        backend = "memory" if cfg.workers == 1 else "lmdb"
    if backend == "memory":
        if cfg.workers > 1:
            raise InvalidInput(
                f"limiter_backend 'memory' counts per process; with {cfg.workers} workers use "
                "limiter_backend 'lmdb' (one host) or 'redis' (several hosts)",
                param="limiter_backend",
            )
        return InProcessLimiter()
    if backend == "lmdb":
        from paramstack.gateway.limits_lmdb import LmdbLimiter

        return LmdbLimiter(
            cfg.resolved_limiter_path,
            reservation_ttl_s=cfg.quota_reservation_ttl_s,
            map_size=cfg.limiter_map_mb << 20,
        )
    if backend == "redis":
        from paramstack.gateway.limits_redis import RedisLimiter

        if not cfg.redis_url:
            raise InvalidInput("limiter_backend 'redis' needs redis_url", param="redis_url")
        return RedisLimiter.from_url(
            cfg.redis_url,
            key_prefix=cfg.limiter_key_prefix,
            reservation_ttl_s=cfg.quota_reservation_ttl_s,
        )
    raise InvalidInput(
        f"unknown limiter backend {cfg.limiter_backend!r}; valid: auto, memory, lmdb, redis",
        param="limiter_backend",
    )


def decide(
    now: int,
    rates: Sequence[RateRule],
    tats: Sequence[int | None],
    quotas: Sequence[QuotaRule],
    books: Sequence[tuple[int, int]],
    tokens: int,
) -> tuple[Outcome, list[int]]:
    """GCRA over every rate rule, then every quota, all or none (the module docstring).

    ``tats`` are the stored arrival times (None: never seen), ``books`` the (used, reserved)
    tokens of each quota today. Returns the outcome and, when admitted, the new ``tat`` per
    rate rule; the caller commits them and the reservation in the same critical section.
    """
    new_tats: list[int] = []
    worst, worst_retry, worst_reset = 0, 0, 0
    for i, (rule, stored) in enumerate(zip(rates, tats, strict=True), 1):
        interval = rule.interval_us
        tat = now if stored is None or stored < now else stored
        new_tat = tat + interval
        allow_at = new_tat - interval * rule.limit
        if allow_at > now and allow_at - now > worst_retry:
            worst, worst_retry, worst_reset = i, allow_at - now, tat - now
        new_tats.append(new_tat)
    if worst:
        return Outcome.rate_denied(worst, worst_retry, worst_reset), []
    day = now // DAY_US
    day_reset = (day + 1) * DAY_US - now
    lefts: list[int] = []
    for j, (quota, (used, reserved)) in enumerate(zip(quotas, books, strict=True), 1):
        if used + reserved + tokens > quota.limit:
            return Outcome.quota_denied(j, used, reserved, day_reset), []
        lefts.append(quota.limit - used - reserved - tokens)
    states = [
        (rule.remaining_after(new_tat - now), new_tat - now)
        for rule, new_tat in zip(rates, new_tats, strict=True)
    ]
    return Outcome.admitted(states, lefts, day, day_reset), new_tats


def wall_clock_us() -> int:
    """Wall time, not monotonic: quota days are UTC calendar days."""
    return time.time_ns() // 1000


@dataclass(slots=True)
class _Bucket:
    used: int = 0
    reserved: int = 0
    open: dict[str, int] = field(default_factory=dict)


class SyncLimiter(ABC):
    """A one-host limiter: its critical section never waits on I/O, so ``admit`` and
    ``settle`` run it inline and threads may call the ``_now`` forms directly."""

    async def admit(
        self, rates: Sequence[RateRule], quotas: Sequence[QuotaRule] = (), tokens: int = 0
    ) -> Admission:
        return self.admit_now(rates, quotas, tokens)

    async def settle(self, reservation: Reservation, used_tokens: int) -> None:
        self.settle_now(reservation, used_tokens)

    @abstractmethod
    def admit_now(
        self, rates: Sequence[RateRule], quotas: Sequence[QuotaRule] = (), tokens: int = 0
    ) -> Admission: ...

    @abstractmethod
    def settle_now(self, reservation: Reservation, used_tokens: int) -> None: ...


class InProcessLimiter(SyncLimiter):
    """Thread-safe and exact within one process; state is lost when the process exits.

    Memory stays bounded: fully replenished rate keys and quota days older than yesterday are
    swept when the table has doubled since the last sweep (amortised O(1) per request).
    """

    def __init__(self, clock_us: Callable[[], int] = wall_clock_us) -> None:
        self._clock = clock_us
        self._lock = threading.Lock()
        self._tats: dict[str, int] = {}
        self._quotas: dict[tuple[str, int], _Bucket] = {}
        self._ids = itertools.count(1)
        self._sweep_at = 1024

    async def aclose(self) -> None:
        return None

    def admit_now(
        self, rates: Sequence[RateRule], quotas: Sequence[QuotaRule] = (), tokens: int = 0
    ) -> Admission:
        """The synchronous form of ``admit`` (safe from any thread)."""
        if tokens < 0:
            raise ValueError("tokens must be >= 0")
        with self._lock:
            outcome, rid = self._evaluate(rates, quotas, tokens)
            self._maybe_sweep()
        return conclude(outcome, rates, quotas, tokens, rid)

    def settle_now(self, reservation: Reservation, used_tokens: int) -> None:
        reservation.mark_settled()
        with self._lock:
            for key in reservation.keys:
                bucket = self._quotas.setdefault((key, reservation.day), _Bucket())
                if bucket.open.pop(reservation.id, None) is not None:
                    bucket.reserved -= reservation.tokens
                bucket.used += max(used_tokens, 0)

    def _evaluate(
        self, rates: Sequence[RateRule], quotas: Sequence[QuotaRule], tokens: int
    ) -> tuple[Outcome, str]:
        now = self._clock()
        day = now // DAY_US
        buckets = [self._quotas.setdefault((q.key, day), _Bucket()) for q in quotas]
        tats = [self._tats.get(rule.key) for rule in rates]
        books = [(bucket.used, bucket.reserved) for bucket in buckets]
        outcome, new_tats = decide(now, rates, tats, quotas, books, tokens)
        if outcome.status:
            return outcome, ""
        for rule, new_tat in zip(rates, new_tats, strict=True):
            self._tats[rule.key] = new_tat
        rid = str(next(self._ids)) if quotas else ""
        for bucket in buckets:
            bucket.reserved += tokens
            bucket.open[rid] = tokens
        return outcome, rid

    def _maybe_sweep(self) -> None:
        if len(self._tats) + len(self._quotas) < self._sweep_at:
            return
        now = self._clock()
        self._tats = {k: t for k, t in self._tats.items() if t > now}
        today = now // DAY_US
        self._quotas = {k: b for k, b in self._quotas.items() if k[1] >= today - 1}
        self._sweep_at = max(1024, 2 * (len(self._tats) + len(self._quotas)))
