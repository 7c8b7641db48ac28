"""The Redis limiter against a real Redis: the same answers as the in-process one, exact under
concurrency, one limit for two replica processes, reservations that expire, and fail-closed."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from redis import Redis

from paramstack.errors import Unavailable
from paramstack.gateway.limit_types import (
    Admission,
    QuotaExceeded,
    QuotaRule,
    RateLimited,
    RateRule,
)
from paramstack.gateway.limits import build_limiter
from paramstack.gateway.limits_redis import RedisLimiter

T = TypeVar("T")
RPM5 = RateRule("t:acme:rpm", 5, 60, "tenant requests per minute")
REPLICA = Path(__file__).with_name("limits_replica.py")


def with_limiter(
    space: tuple[str, str], body: Callable[[RedisLimiter], Awaitable[T]], ttl_s: float = 900
) -> T:
    async def run() -> T:
        limiter = RedisLimiter.from_url(space[0], key_prefix=space[1], reservation_ttl_s=ttl_s)
        try:
            return await body(limiter)
        finally:
            await limiter.aclose()

    return asyncio.run(run())


async def attempt(coro: Awaitable[Admission]) -> Admission | Exception:
    try:
        return await coro
    except (RateLimited, QuotaExceeded) as exc:
        return exc


def test_burst_retry_after_and_quota_answers_match_the_in_process_limiter(
    redis_space: tuple[str, str],
) -> None:
    async def body(limiter: RedisLimiter) -> None:
        admitted = [await limiter.admit([RPM5]) for _ in range(5)]
        assert [a.request_remaining for a in admitted] == [4, 3, 2, 1, 0]
        assert admitted[0].headers()["x-ratelimit-reset"] == "12"
        with pytest.raises(RateLimited) as refused:
            await limiter.admit([RPM5])
        headers = refused.value.headers
        assert headers["retry-after"] == "12" and 11_000 < int(headers["retry-after-ms"]) <= 12_000
        assert headers["x-ratelimit-remaining"] == "0"

        quota = [QuotaRule("t:acme:tpd", 100, "tenant tokens per day")]
        first = await limiter.admit([], quota, 80)
        assert first.token_remaining == 20 and first.reservation is not None
        with pytest.raises(QuotaExceeded) as short:
            await limiter.admit([], quota, 21)
        assert short.value.headers["retry-after"] == "1"
        await limiter.settle(first.reservation, 0)
        with pytest.raises(ValueError, match="already settled"):
            await limiter.settle(first.reservation, 0)
        assert (await limiter.admit([], quota, 100)).token_remaining == 0

    with_limiter(redis_space, body)


def test_a_refused_request_consumes_nothing_from_any_rule(redis_space: tuple[str, str]) -> None:
    rps = RateRule("k:1:rps", 3, 1, "API key requests per second")
    rpm = RateRule("k:1:rpm", 2, 60, "API key requests per minute")

    async def body(limiter: RedisLimiter) -> None:
        await limiter.admit([rps, rpm])
        await limiter.admit([rps, rpm])
        for _ in range(5):
            with pytest.raises(RateLimited, match="per minute"):
                await limiter.admit([rps, rpm])
        assert (await limiter.admit([rps])).request_remaining == 0

    with_limiter(redis_space, body)


@pytest.mark.parametrize(("limit", "attempts"), [(17, 64), (1, 30)])
def test_exactly_n_of_m_concurrent_requests_are_admitted(
    redis_space: tuple[str, str], limit: int, attempts: int
) -> None:
    rule = RateRule("t:x:rpm", limit, 60, "tenant requests per minute")

    async def body(limiter: RedisLimiter) -> list[Admission | Exception]:
        return await asyncio.gather(*(attempt(limiter.admit([rule])) for _ in range(attempts)))

    results = with_limiter(redis_space, body)
    admitted = [r for r in results if isinstance(r, Admission)]
    assert len(admitted) == limit
    assert sorted(a.request_remaining for a in admitted) == list(range(limit))


def test_fifty_concurrent_reservations_never_overspend(redis_space: tuple[str, str]) -> None:
    quotas = [
        QuotaRule("t:acme:tpd", 5000, "tenant tokens per day"),
        QuotaRule("k:9:tpd", 1000, "API key tokens per day"),
    ]

    async def body(limiter: RedisLimiter) -> tuple[int, int]:
        first = await asyncio.gather(*(attempt(limiter.admit([], quotas, 64)) for _ in range(50)))
        admitted = [r for r in first if isinstance(r, Admission)]
        assert len(admitted) == 15  # 15 x 64 = 960 of the key's 1000
        used = [random.randint(0, 64) for _ in admitted]
        await asyncio.gather(
            *(
                limiter.settle(a.reservation, u)
                for a, u in zip(admitted, used, strict=True)
                if a.reservation
            )
        )
        left = 1000 - sum(used)
        last = await limiter.admit([], quotas, left)
        over = await attempt(limiter.admit([], quotas, 1))
        assert isinstance(over, QuotaExceeded) and "API key tokens per day" in over.message
        return last.token_remaining, left

    remaining, left = with_limiter(redis_space, body)
    assert remaining == 0 and left >= 40


def test_two_replica_processes_sharing_redis_enforce_one_limit(
    redis_space: tuple[str, str],
) -> None:
    url, prefix = redis_space
    control = Redis.from_url(url)
    procs = [
        subprocess.Popen(
            [sys.executable, str(REPLICA), url, prefix, "30"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 30
        while int(control.get(prefix + "ready") or 0) < 2:
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), [
                p.communicate()[1][-2000:] for p in procs if p.poll() is not None
            ]
            time.sleep(0.01)
        control.set(prefix + "go", 1)
        outputs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        control.close()
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outputs]
    counts = [json.loads(out) for out, _ in outputs]
    assert sum(c["rate"] for c in counts) == 25  # one limit of 25/min for 60 requests, not 2 x 25
    assert sum(c["quota"] for c in counts) == 1000 // 70  # 14 x 70 = 980 tokens spent
    assert [c["attempts"] for c in counts] == [60, 60]  # both replicas really took part

    async def body(limiter: RedisLimiter) -> Admission:
        with pytest.raises(QuotaExceeded):
            await limiter.admit([], [QuotaRule("t:shared:tpd", 1000, "t")], 21)
        return await limiter.admit([], [QuotaRule("t:shared:tpd", 1000, "t")], 20)

    assert with_limiter(redis_space, body).token_remaining == 0


def test_an_abandoned_reservation_expires_and_a_late_settle_still_counts(
    redis_space: tuple[str, str],
) -> None:
    quota = [QuotaRule("t:a:tpd", 100, "tenant tokens per day")]

    async def body(limiter: RedisLimiter) -> None:
        abandoned = await limiter.admit([], quota, 90)  # its replica "dies" here
        with pytest.raises(QuotaExceeded):
            await limiter.admit([], quota, 20)
        await asyncio.sleep(0.35)
        again = await limiter.admit([], quota, 20)  # the sweep freed the 90 tokens
        assert again.token_remaining == 80 and abandoned.reservation is not None
        await limiter.settle(abandoned.reservation, 30)  # a late settle: real usage counts
        with pytest.raises(QuotaExceeded):
            await limiter.admit([], quota, 51)
        assert (await limiter.admit([], quota, 50)).token_remaining == 0

    with_limiter(redis_space, body, ttl_s=0.3)


def test_unreachable_redis_fails_closed_with_503() -> None:
    class Cfg:
        limiter_backend = "redis"
        redis_url = "redis://127.0.0.1:1/0"
        limiter_key_prefix = "pstest:"
        quota_reservation_ttl_s = 900.0
        workers = 4

    async def body() -> None:
        limiter = build_limiter(Cfg())
        try:
            with pytest.raises(Unavailable) as down:
                await limiter.admit([RPM5])
            assert down.value.http_status == 503 and down.value.code == "limiter_down"
        finally:
            await limiter.aclose()

    asyncio.run(body())
