"""Traffic splits on the request path: pick a sticky arm, then watch each arm's outcomes.

The table is a snapshot of ``registry.traffic.load_views`` swapped in by the refresh loop,
so picking an arm reads no database. A user (the request's ``user``, else the API key)
always lands on the same arm of a split (``routing.sticky_share``). Each finished call
feeds a sliding window per arm (in this process) that the SLO watcher judges, plus
Prometheus counters and a latency histogram per split and arm.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from paramstack.gateway.routing import sticky_share
from paramstack.gateway.telemetry import LLM_LATENCY_BUCKETS_S
from paramstack.registry.stats import percentile
from paramstack.registry.traffic import SplitView

Sample = tuple[float, float, bool, Decimal, str]  # time, latency ms, failed, cost, currency
MAX_SAMPLES = 100_000  # per arm: bounds memory whatever the window and the traffic


class TrafficMetrics:
    def __init__(self, r: CollectorRegistry) -> None:
        self.requests = Counter(
            "paramstack_traffic_requests", "Calls per traffic split and arm (stable/candidate).",
            ["split", "arm"], registry=r,
        )  # fmt: skip
        self.errors = Counter(
            "paramstack_traffic_errors", "Server-side failures (5xx) per split and arm.",
            ["split", "arm"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "paramstack_traffic_latency_seconds", "Call latency per split and arm.",
            ["split", "arm"], buckets=LLM_LATENCY_BUCKETS_S, registry=r,
        )  # fmt: skip
        self.cost = Counter(
            "paramstack_traffic_cost", "Billed cost per split and arm, in each tenant's currency "
            "(float of the exact ledger Decimal: for dashboards).",
            ["split", "arm", "currency"], registry=r,
        )  # fmt: skip
        self.rollbacks = Counter(
            "paramstack_traffic_rollbacks", "Canary rollbacks by split and trigger.",
            ["split", "trigger"], registry=r,
        )  # fmt: skip
        self.share = Gauge(
            "paramstack_traffic_candidate_percent", "The candidate's share of a split.",
            ["split"], registry=r, multiprocess_mode="livemax",
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Pick:
    split: SplitView
    arm: str  # "stable" or "candidate"
    target: str

    def routing(self) -> dict[str, Any]:
        """What the usage ledger's ``routing`` JSON records under ``traffic``."""
        s = self.split
        return {"split": s.name, "kind": s.kind, "arm": self.arm, "target": self.target,
                "percent": s.percent, "revision": s.revision}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Window:
    requests: int
    errors: int
    p95_ms: float | None
    cost: dict[str, Decimal] = field(default_factory=dict)  # per currency, exact

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def breach(split: SplitView, window: Window) -> str | None:
    """Why the candidate breaks its SLO over the window, or None (also before min requests)."""
    if not split.guarded or window.requests < split.min_requests:
        return None
    if split.max_error_rate is not None and window.error_rate > split.max_error_rate:
        return (
            f"error rate {window.error_rate:.3f} > {split.max_error_rate} over "
            f"{window.requests} requests in {split.window_s:g} s"
        )
    p95, limit = window.p95_ms, split.max_p95_ms
    if limit is not None and p95 is not None and p95 > limit:
        return (
            f"p95 latency {p95:.1f} ms > {limit:g} ms over "
            f"{window.requests} requests in {split.window_s:g} s"
        )
    return None


class TrafficTable:
    def __init__(
        self,
        metrics: TrafficMetrics | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metrics = metrics
        self._splits: dict[str, SplitView] = {}
        # (split id, revision, arm) -> its calls: a split set again starts
        # a fresh window, so calls from before a rollback never count against the next run
        self._samples: dict[tuple[int, int, str], deque[Sample]] = {}
        self._lock = threading.Lock()
        self._rng = rng or random.Random()
        self._clock = clock

    def replace(self, views: dict[str, SplitView]) -> None:
        """Swap in a snapshot, keeping a local decision newer than what the snapshot read."""
        current = self._splits
        merged = {}
        for name, v in views.items():
            mine = current.get(name)
            if mine is not None and mine.id == v.id and mine.revision > v.revision:
                v = mine  # our rollback committed after this snapshot was read
            merged[name] = v
        self._splits = merged
        self._forget_old_samples()
        self._publish()

    def apply(self, split: SplitView) -> None:
        """A change made by this process, effective at once (before the next snapshot)."""
        self._splits = {**self._splits, split.name: split}
        self._forget_old_samples()
        self._publish()

    def _forget_old_samples(self) -> None:
        current = {(s.id, s.revision) for s in self._splits.values()}
        with self._lock:
            for key in [k for k in self._samples if k[:2] not in current]:
                del self._samples[key]

    def _publish(self) -> None:
        if self.metrics is not None:
            for v in self._splits.values():
                self.metrics.share.labels(v.name).set(v.percent if v.splitting else 0.0)

    def splits(self) -> list[SplitView]:
        return list(self._splits.values())

    def get(self, name: str) -> SplitView | None:
        return self._splits.get(name)

    def pick(self, model: str, user: str) -> Pick | None:
        """The arm for this user, or None when ``model`` is no split (route it as named)."""
        split = self._splits.get(model)
        if split is None:
            return None
        share = sticky_share(split.id, user) if user else self._rng.random() * 100
        if split.splitting and share < split.percent:
            return Pick(split, "candidate", split.candidate)
        return Pick(split, "stable", split.stable)

    def observe(
        self,
        pick: Pick,
        latency_s: float,
        status_code: int,
        cost: Decimal = Decimal(0),
        currency: str = "USD",
    ) -> None:
        error = status_code >= 500
        name, arm = pick.split.name, pick.arm
        if self.metrics is not None:
            self.metrics.requests.labels(name, arm).inc()
            self.metrics.latency.labels(name, arm).observe(latency_s)
            if error:
                self.metrics.errors.labels(name, arm).inc()
            if cost:
                self.metrics.cost.labels(name, arm, currency).inc(float(cost))
        with self._lock:
            key = (pick.split.id, pick.split.revision, arm)
            samples = self._samples.get(key)
            if samples is None:
                samples = self._samples[key] = deque(maxlen=MAX_SAMPLES)
            samples.append((self._clock(), latency_s * 1000, error, cost, currency))

    def window(self, split: SplitView, arm: str) -> Window:
        """The arm's calls in the split's sliding window (older samples are dropped)."""
        horizon = self._clock() - split.window_s
        with self._lock:
            samples = self._samples.get((split.id, split.revision, arm))
            if not samples:
                return Window(0, 0, None)
            while samples and samples[0][0] < horizon:
                samples.popleft()
            latencies = [s[1] for s in samples]
            errors = sum(1 for s in samples if s[2])
            cost: dict[str, Decimal] = {}
            for s in samples:
                cost[s[4]] = cost.get(s[4], Decimal(0)) + s[3]
        return Window(len(latencies), errors, percentile(latencies, 95), cost)

    def breaches(self) -> list[tuple[SplitView, str]]:
        """Every guarded canary whose candidate arm breaks its SLO right now."""
        found = []
        for split in self._splits.values():
            reason = breach(split, self.window(split, "candidate"))
            if reason is not None:
                found.append((split, reason))
        return found
