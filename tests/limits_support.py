"""Helpers for the limiter tests: a fake clock and the real Redis the suite runs against."""

from __future__ import annotations

import os
import uuid

import pytest

REDIS_ENV = "PARAMSTACK_TEST_REDIS_URL"


class FakeClock:
    """Microseconds since the epoch, moved only by the test (quota days are UTC days)."""

    def __init__(self, start_us: int = 1_800_000_000 * 1_000_000) -> None:
        self.now_us = start_us

    def __call__(self) -> int:
        return self.now_us

    def advance(self, seconds: float) -> None:
        self.now_us += round(seconds * 1_000_000)


def redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.fail(
            f"{REDIS_ENV} is not set: run the tests with `make test`, which starts Redis "
            "(scripts/start-redis.sh) and exports it"
        )
    return url


def unique_prefix() -> str:
    """Every test gets its own key space, so runs never see each other's counters."""
    return f"pstest:{uuid.uuid4().hex[:12]}:"


def delete_prefix(url: str, prefix: str) -> None:
    from redis import Redis

    client = Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
