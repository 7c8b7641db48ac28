"""One gateway replica's limiter, run as its own process by test_limits_redis.

Usage: python tests/limits_replica.py REDIS_URL KEY_PREFIX N. It registers as ready, waits for
the go signal (so both replicas fire at the same moment), sends N concurrent rate-limited
requests and N concurrent 70-token reservations (each settled in full), and prints how
many of each were admitted as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from redis import Redis

from paramstack.gateway.limit_types import QuotaExceeded, QuotaRule, RateLimited, RateRule
from paramstack.gateway.limits_redis import RedisLimiter

RATE = RateRule("t:shared:rpm", 25, 60, "tenant requests per minute")
QUOTA = QuotaRule("t:shared:tpd", 1000, "tenant tokens per day")


async def fire(url: str, prefix: str, n: int) -> dict[str, int]:
    limiter = RedisLimiter.from_url(url, key_prefix=prefix)
    control = Redis.from_url(url)
    try:
        await asyncio.gather(*(limiter._client.ping() for _ in range(n)))  # open n connections
        control.incr(prefix + "ready")
        deadline = time.monotonic() + 20
        while not control.exists(prefix + "go"):
            if time.monotonic() > deadline:
                raise TimeoutError("no go signal")
            time.sleep(0.001)

        async def request() -> bool:
            try:
                await limiter.admit([RATE])
            except RateLimited:
                return False
            return True

        async def reserve() -> bool:
            try:
                admission = await limiter.admit([], [QUOTA], 70)
            except QuotaExceeded:
                return False
            assert admission.reservation is not None
            await limiter.settle(admission.reservation, 70)
            return True

        rate = await asyncio.gather(*(request() for _ in range(n)))
        quota = await asyncio.gather(*(reserve() for _ in range(n)))
        return {"rate": sum(rate), "quota": sum(quota), "attempts": len(rate) + len(quota)}
    finally:
        control.close()
        await limiter.aclose()


if __name__ == "__main__":
    url, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(json.dumps(asyncio.run(fire(url, prefix, count))))
