"""Tracing cost per request: the seven ``span()`` calls of one chat request, off and on.

Baseline in the same run: the same seven ``with`` blocks on a ready-made ``nullcontext``
(the cheapest context manager Python has). "off" must stay within a small factor of it;
"on" uses the real SDK with a processor that drops spans (export cost excluded).
Run: ``.venv/bin/python bench/tracing.py [--seconds 1]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from contextlib import nullcontext

from opentelemetry.sdk.trace import TracerProvider

from paramstack.gateway import tracing

NAMES = ("auth", "routing", "guard.prompt", "limits", "backend", "guard.answer", "attestation")


def per_call_ns(fn: Callable[[], None], seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(1000):
            fn()
        n += 1000
    return elapsed / n * 1e9


def request_spans() -> None:
    for name in NAMES:
        with tracing.span(name):
            pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.0)
    seconds = parser.parse_args().seconds
    ready = nullcontext()

    def baseline() -> None:
        for _ in NAMES:
            with ready:
                pass

    base = per_call_ns(baseline, seconds)
    tracing.use_provider(None)
    off = per_call_ns(request_spans, seconds)
    tracing.use_provider(TracerProvider())  # no processor: spans are built, then dropped
    on = per_call_ns(request_spans, seconds)
    tracing.use_provider(None)
    print(f"baseline (7 x nullcontext): {base:8.0f} ns/request")
    print(f"tracing off               : {off:8.0f} ns/request  ({off / base:.2f}x baseline)")
    print(f"tracing on (SDK, no export): {on:7.0f} ns/request  ({on / base:.2f}x baseline)")


if __name__ == "__main__":
    main()
