"""What only the LMDB limiter promises: one limit for several processes on a host, state that
outlives a process, reservations of a dead worker that expire, bounded size, fail-closed.

The decisions themselves run through the same tests as the in-process limiter
(``test_limits_inprocess.py`` is parametrised over both backends).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from paramstack.errors import Unavailable
from paramstack.gateway.limit_types import QuotaExceeded, QuotaRule, RateLimited, RateRule
from paramstack.gateway.limits_lmdb import SWEEP_EVERY, LmdbLimiter
from tests.limits_support import FakeClock

RATE = RateRule("t:shared:rpm", 25, 60, "tenant requests per minute")
QUOTA = QuotaRule("t:shared:tpd", 1000, "tenant tokens per day")
THREADS = 30


def replica(path: str, start: Barrier, out: multiprocessing.Queue[tuple[int, int, int]]) -> None:
    """One worker process: THREADS concurrent requests, then THREADS 70-token reservations."""
    limiter = LmdbLimiter(Path(path))
    inner = threading.Barrier(THREADS)
    counts = [0, 0]

    def request(i: int) -> None:
        inner.wait()
        try:
            limiter.admit_now([RATE])
            counts[0] += 1
        except RateLimited:
            pass
        inner.wait()
        try:
            admission = limiter.admit_now([], [QUOTA], 70)
        except QuotaExceeded:
            return
        assert admission.reservation is not None
        limiter.settle_now(admission.reservation, 70)
        counts[1] += 1

    threads = [threading.Thread(target=request, args=(i,)) for i in range(THREADS)]
    start.wait()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    out.put((os.getpid(), counts[0], counts[1]))
    asyncio.run(limiter.aclose())


def test_two_processes_sharing_the_file_enforce_one_limit(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")  # what uvicorn uses for its workers
    start, out = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=replica, args=(str(tmp_path / "lim"), start, out)) for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(30)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len({pid for pid, _, _ in results}) == 2
    assert sum(rate for _, rate, _ in results) == 25  # one limit of 25/min, not 2 x 25
    assert sum(quota for _, _, quota in results) == 1000 // 70  # 14 x 70 = 980 tokens spent
    limiter = LmdbLimiter(tmp_path / "lim")  # a third process-worth of state agrees
    with pytest.raises(QuotaExceeded):
        limiter.admit_now([], [QUOTA], 21)
    assert limiter.admit_now([], [QUOTA], 20).token_remaining == 0
    asyncio.run(limiter.aclose())


def test_state_outlives_the_process_and_a_dead_workers_reservation_expires(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    first = LmdbLimiter(tmp_path / "lim", clock_us=clock, reservation_ttl_s=30)
    for _ in range(5):
        first.admit_now([RateRule("k:1:rpm", 5, 60, "key requests per minute")])
    abandoned = first.admit_now([], [QuotaRule("t:a:tpd", 100, "t")], 90)
    asyncio.run(first.aclose())  # the worker "dies" between admit and settle

    second = LmdbLimiter(tmp_path / "lim", clock_us=clock, reservation_ttl_s=30)
    with pytest.raises(RateLimited):  # the burst is still spent after a restart
        second.admit_now([RateRule("k:1:rpm", 5, 60, "key requests per minute")])
    with pytest.raises(QuotaExceeded):  # the 90 tokens are still held...
        second.admit_now([], [QuotaRule("t:a:tpd", 100, "t")], 20)
    clock.advance(31)
    again = second.admit_now([], [QuotaRule("t:a:tpd", 100, "t")], 20)
    assert again.token_remaining == 80  # ...until its reservation expired
    assert abandoned.reservation is not None
    second.settle_now(abandoned.reservation, 30)  # a late settle: the real usage counts
    with pytest.raises(QuotaExceeded):
        second.admit_now([], [QuotaRule("t:a:tpd", 100, "t")], 51)
    assert second.admit_now([], [QuotaRule("t:a:tpd", 100, "t")], 50).token_remaining == 0
    asyncio.run(second.aclose())


def test_the_file_stays_bounded_and_a_full_map_fails_closed(tmp_path: Path) -> None:
    clock = FakeClock()
    limiter = LmdbLimiter(tmp_path / "lim", clock_us=clock, map_size=1 << 20)
    for i in range(3 * SWEEP_EVERY):
        limiter.admit_now([RateRule(f"k:{i}:rps", 5, 1, "key requests per second")])
        clock.advance(0.001)  # a key is replenished one second after its request
    with limiter._env.begin() as txn:
        live = txn.stat(limiter._tats)["entries"]
    assert live < SWEEP_EVERY  # swept: only keys seen within the last second or so remain

    def fill() -> None:  # 1 MiB cannot hold this many live keys
        for i in range(200_000):
            limiter.admit_now([RateRule(f"live:{i}:{'x' * 300}", 5, 60, "per minute")])

    with pytest.raises(Unavailable) as full:
        fill()
    assert full.value.http_status == 503 and "limiter_map_mb" in full.value.message
    clock.advance(61)  # every key replenished: the sweep on the next full map frees them
    assert limiter.admit_now([RateRule("after", 5, 60, "per minute")]).request_remaining == 4
    asyncio.run(limiter.aclose())


def test_keys_that_cannot_be_stored_are_refused(tmp_path: Path) -> None:
    limiter = LmdbLimiter(tmp_path / "lim")
    with pytest.raises(ValueError, match="NUL-free"):
        limiter.admit_now([RateRule("a\0b", 1, 1, "x")])
    with pytest.raises(ValueError, match="at most 400 bytes"):
        limiter.admit_now([RateRule("k" * 401, 1, 1, "x")])
    asyncio.run(limiter.aclose())
