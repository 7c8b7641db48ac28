"""The one-host limiters, in-process and LMDB alike: exact GCRA windows, atomic multi-rule
checks, exact quotas under thread concurrency, and the 429 headers clients rely on."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

import pytest

from paramstack.errors import InvalidInput
from paramstack.gateway.limit_types import (
    DAY_US,
    Admission,
    QuotaExceeded,
    QuotaRule,
    RateLimited,
    RateRule,
    rules_for,
)
from paramstack.gateway.limits import InProcessLimiter, build_limiter, wall_clock_us
from paramstack.gateway.limits_lmdb import LmdbLimiter
from paramstack.registry.key_ring import Price, Principal, TenantPolicy
from tests.limits_support import FakeClock

T = TypeVar("T")
RPM5 = RateRule("t:acme:rpm", 5, 60, "tenant requests per minute")


Make = Callable[..., InProcessLimiter | LmdbLimiter]


@pytest.fixture(params=["memory", "lmdb"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Make]:
    """A limiter of each one-host backend (LMDB: a fresh file per test) on a given clock."""
    opened: list[LmdbLimiter] = []

    def build(clock: Callable[[], int] = wall_clock_us) -> InProcessLimiter | LmdbLimiter:
        if request.param == "memory":
            return InProcessLimiter(clock)
        opened.append(LmdbLimiter(tmp_path / f"limiter{len(opened)}", clock_us=clock))
        return opened[-1]

    yield build
    for limiter in opened:
        asyncio.run(limiter.aclose())


def run_concurrently(n: int, task: Callable[[int], T]) -> list[T | Exception]:
    """Start ``n`` threads that all call ``task`` at the same moment (a barrier)."""
    barrier = threading.Barrier(n)
    results: list[T | Exception] = [RuntimeError("not run")] * n

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = task(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def test_burst_of_exactly_n_then_retry_after_then_one_per_interval(make: Make) -> None:
    clock = FakeClock()
    limiter = make(clock)
    admitted = [limiter.admit_now([RPM5]) for _ in range(5)]
    assert [a.request_remaining for a in admitted] == [4, 3, 2, 1, 0]
    assert admitted[0].headers()["x-ratelimit-reset"] == "12"  # one interval (60 s / 5) ahead
    assert admitted[-1].headers()["x-ratelimit-reset"] == "60"
    with pytest.raises(RateLimited) as refused:
        limiter.admit_now([RPM5])
    err = refused.value
    assert err.http_status == 429 and err.code == "rate_limit_exceeded"
    assert err.headers["retry-after"] == "12" and err.headers["retry-after-ms"] == "12000"
    assert err.headers["x-ratelimit-remaining"] == "0" and err.headers["x-ratelimit-limit"] == "5"
    assert "tenant requests per minute" in err.message
    clock.advance(11.999_999)
    with pytest.raises(RateLimited):
        limiter.admit_now([RPM5])
    clock.advance(0.000_001)
    assert limiter.admit_now([RPM5]).request_remaining == 0
    with pytest.raises(RateLimited):
        limiter.admit_now([RPM5])
    clock.advance(60)
    assert [limiter.admit_now([RPM5]).request_remaining for _ in range(5)] == [4, 3, 2, 1, 0]


def test_a_refused_request_consumes_nothing_from_any_rule(make: Make) -> None:
    clock = FakeClock()
    limiter = make(clock)
    rps = RateRule("k:1:rps", 3, 1, "API key requests per second")
    rpm = RateRule("k:1:rpm", 2, 60, "API key requests per minute")
    limiter.admit_now([rps, rpm])
    limiter.admit_now([rps, rpm])
    for _ in range(5):  # refused by rpm: the per-second allowance must stay at 1
        with pytest.raises(RateLimited) as refused:
            limiter.admit_now([rps, rpm])
        assert "per minute" in refused.value.message
    assert limiter.admit_now([rps]).request_remaining == 0


def test_headers_report_the_tightest_rule(make: Make) -> None:
    limiter = make(FakeClock())
    rps = RateRule("t:a:rps", 10, 1, "tenant requests per second")
    rpm = RateRule("t:a:rpm", 3, 60, "tenant requests per minute")
    admission = limiter.admit_now([rps, rpm], [QuotaRule("t:a:tpd", 5000, "tokens")], 1200)
    headers = admission.headers()
    assert headers["x-ratelimit-limit"] == "3" and headers["x-ratelimit-remaining"] == "2"
    assert headers["x-ratelimit-limit-tokens"] == "5000"
    assert headers["x-ratelimit-remaining-tokens"] == "3800"
    assert Admission().headers() == {}


@pytest.mark.parametrize(("limit", "attempts"), [(17, 64), (1, 40), (40, 40)])
def test_exactly_n_of_m_concurrent_threads_are_admitted(
    make: Make, limit: int, attempts: int
) -> None:
    limiter = make()  # the real wall clock: a 60 s window cannot refill mid-test
    rule = RateRule("t:x:rpm", limit, 60, "tenant requests per minute")
    results = run_concurrently(attempts, lambda _: limiter.admit_now([rule]))
    admitted = [r for r in results if isinstance(r, Admission)]
    assert len(admitted) == limit
    assert all(isinstance(r, RateLimited) for r in results if not isinstance(r, Admission))
    assert sorted(a.request_remaining for a in admitted) == list(range(limit))


def test_tenant_limit_holds_across_its_keys_under_concurrency(make: Make) -> None:
    limiter = make()
    tenant = RateRule("t:acme:rpm", 20, 60, "tenant requests per minute")
    keys = [RateRule(f"k:{k}:rpm", 15, 60, "API key requests per minute") for k in (1, 2)]
    results = run_concurrently(60, lambda i: (i % 2, limiter.admit_now([tenant, keys[i % 2]])))
    per_key = [sum(1 for r in results if isinstance(r, tuple) and r[0] == k) for k in (0, 1)]
    assert sum(per_key) == 20 and max(per_key) <= 15


def test_fifty_concurrent_reservations_never_overspend_the_daily_quota(make: Make) -> None:
    limiter = make()
    quotas = [QuotaRule("t:acme:tpd", 1000, "tenant tokens per day")]
    results = run_concurrently(50, lambda _: limiter.admit_now([], quotas, 64))
    admitted = [r for r in results if isinstance(r, Admission)]
    assert len(admitted) == 1000 // 64  # 15 x 64 = 960 reserved; a 16th would overspend
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(refused) == 35 and refused[0].code == "insufficient_quota"
    assert refused[0].headers["retry-after"] == "1"  # in-flight reservations may come back
    used = [random.randint(0, 64) for _ in admitted]
    reservations = [a.reservation for a in admitted if a.reservation is not None]
    run_concurrently(len(admitted), lambda i: limiter.settle_now(reservations[i], used[i]))
    left = 1000 - sum(used)  # settling returned every unused reserved token, exactly
    last = limiter.admit_now([], quotas, left)
    assert last.token_remaining == 0 and last.reservation is not None
    limiter.settle_now(last.reservation, left)
    with pytest.raises(QuotaExceeded) as exhausted:
        limiter.admit_now([], quotas, 1)
    to_midnight_s = (DAY_US - time.time_ns() // 1000 % DAY_US) / 1e6
    # spent, not merely in flight: come back at the next UTC day
    assert abs(int(exhausted.value.headers["retry-after"]) - to_midnight_s) < 3


def test_reserve_settle_churn_with_many_threads_keeps_the_books_exact(make: Make) -> None:
    limiter = make()
    quotas = [
        QuotaRule("t:acme:tpd", 5000, "tenant tokens per day"),
        QuotaRule("k:7:tpd", 3000, "API key tokens per day"),
    ]
    settled = [0] * 50

    def client(i: int) -> None:
        rng = random.Random(i)
        for _ in range(40):
            try:
                admission = limiter.admit_now([], quotas, rng.randint(1, 120))
            except QuotaExceeded:
                continue
            assert admission.reservation is not None
            real = rng.randint(0, admission.reservation.tokens)
            limiter.settle_now(admission.reservation, real)
            settled[i] += real

    assert not [r for r in run_concurrently(50, client) if isinstance(r, Exception)]
    total = sum(settled)
    assert 0 < total <= 3000  # the key's quota binds and was never overspent
    assert limiter.admit_now([], quotas, 3000 - total).token_remaining == 0
    with pytest.raises(QuotaExceeded):
        limiter.admit_now([], quotas, 1)


def test_a_request_larger_than_the_quota_waits_for_the_next_utc_day(make: Make) -> None:
    clock = FakeClock(start_us=20_000 * DAY_US + 3_600 * 1_000_000)  # 01:00 UTC
    limiter = make(clock)
    quota = [QuotaRule("t:a:tpd", 100, "tenant tokens per day")]
    admission = limiter.admit_now([], quota, 100)
    assert admission.reservation is not None
    limiter.settle_now(admission.reservation, 100)
    with pytest.raises(QuotaExceeded) as refused:
        limiter.admit_now([], quota, 1)
    assert refused.value.headers["retry-after"] == str(23 * 3600)
    assert refused.value.headers["x-ratelimit-remaining-tokens"] == "0"
    clock.advance(23 * 3600)
    assert limiter.admit_now([], quota, 100).token_remaining == 0


def test_a_reservation_settles_once_and_failures_release_it(make: Make) -> None:
    limiter = make(FakeClock())
    quota = [QuotaRule("t:a:tpd", 100, "tenant tokens per day")]
    admission = limiter.admit_now([], quota, 80)
    assert admission.reservation is not None
    with pytest.raises(QuotaExceeded):
        limiter.admit_now([], quota, 21)
    limiter.settle_now(admission.reservation, 0)  # the upstream failed: nothing was used
    with pytest.raises(ValueError, match="already settled"):
        limiter.settle_now(admission.reservation, 0)
    assert limiter.admit_now([], quota, 100).token_remaining == 0
    with pytest.raises(ValueError, match="tokens"):
        limiter.admit_now([], quota, -1)


def test_memory_stays_bounded_as_keys_come_and_go() -> None:
    clock = FakeClock()
    limiter = InProcessLimiter(clock)
    for i in range(20_000):
        limiter.admit_now([RateRule(f"k:{i}:rps", 5, 1, "API key requests per second")])
        if i % 1000 == 999:
            clock.advance(2)  # everything older than a second is fully replenished
    assert len(limiter._tats) <= 3000


def test_rules_for_a_principal_combine_tenant_and_key_limits() -> None:
    tenant = TenantPolicy(
        id="acme", name="Acme", domain="law", default_model=None, default_adapter=None,
        rag_collection=None, currency="USD", requests_per_second=10, requests_per_minute=None,
        tokens_per_day=100_000, prices=MappingProxyType({"m": Price(Decimal(1), Decimal(2))}),
    )  # fmt: skip
    principal = Principal(
        tenant=tenant, key_id=7, key_prefix="psk_x", requests_per_second=None,
        requests_per_minute=30, tokens_per_day=5_000,
    )  # fmt: skip
    rates, quotas = rules_for(principal)
    assert [(r.key, r.limit, r.period_s) for r in rates] == [
        ("t:acme:rps", 10, 1),
        ("k:7:rpm", 30, 60),
    ]
    assert [(q.key, q.limit) for q in quotas] == [("t:acme:tpd", 100_000), ("k:7:tpd", 5_000)]
    with pytest.raises(ValueError, match="limit"):
        RateRule("x", 0, 1, "broken")
    assert rules_for(principal) is rules_for(principal)  # built once per principal
    # the next key ring snapshot brings a new principal object: its own (changed) limits count
    changed = dataclasses.replace(principal, requests_per_minute=3)
    assert [(r.key, r.limit) for r in rules_for(changed)[0]] == [("t:acme:rps", 10), ("k:7:rpm", 3)]
    assert [r.limit for r in rules_for(principal)[0]] == [10, 30]


def test_build_limiter_picks_a_shared_backend_or_refuses_per_process_counters(
    tmp_path: Path,
) -> None:
    class Cfg:
        limiter_backend = "auto"
        redis_url = None
        limiter_key_prefix = "paramstack:"
        quota_reservation_ttl_s = 900.0
        workers = 1
        resolved_limiter_path = tmp_path / "limiter"
        limiter_map_mb = 16

    assert isinstance(build_limiter(Cfg()), InProcessLimiter)
    Cfg.workers = 2  # auto: several workers share one LMDB file instead of N counters
    shared = build_limiter(Cfg())
    assert isinstance(shared, LmdbLimiter) and (tmp_path / "limiter" / "data.mdb").is_file()
    asyncio.run(shared.aclose())
    Cfg.limiter_backend = "memory"
    with pytest.raises(InvalidInput, match="use limiter_backend 'lmdb' \\(one host\\) or 'redis'"):
        build_limiter(Cfg())
    Cfg.limiter_backend = "redis"
    with pytest.raises(InvalidInput, match="needs redis_url"):
        build_limiter(Cfg())
    Cfg.limiter_backend = "etcd"
    with pytest.raises(InvalidInput, match="valid: auto, memory, lmdb, redis"):
        build_limiter(Cfg())
