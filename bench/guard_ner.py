"""Guard CPU time per 1 kB with ``pii.presidio`` on (Presidio's spaCy NER) vs off, same run.

Samples: the Turkish chat sample ``guard eval`` times, the four 1 kB English texts of
``configs/guard/latency_samples.yaml`` and a Turkish/English text full of names and places.
For each, the PII check alone, all checks (``Guard.run``) and the answer streamed in 4-character
chunks through ``Guard.stream_output`` are timed with the default policy
and with the NER added, alternating rounds, in CPU time (``time.process_time``: the machine is
shared, wall time is not comparable across rounds). The NER is ``--model`` (a spaCy pipeline
with ``ner``), or the tests' tiny model trained on the spot: blank ``tr`` + spaCy's default NER
architecture, i.e. the cost of an NER-only small pipeline, not of a full ``*_core_*_sm`` one
(tagger, parser, lemmatiser would add to it).
Run: ``PYTHONPATH=src:. .venv/bin/python bench/guard_ner.py --home var``.
"""

# ruff: noqa: RUF001  (Turkish text: the dotless i is the point)

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from paramstack.errors import GuardBlocked
from paramstack.guard.checks import GuardResources, TextView
from paramstack.guard.datasets import CONFIG_DIR
from paramstack.guard.engine import Guard
from paramstack.guard.policy import Direction, Policy

CHAT = ("Merhaba, siparisim hakkinda bilgi almak istiyorum. " * 12)[:900] + (
    " Bana ayse@example.com veya 0532 123 45 67 uzerinden ulasin."
)
NAMES = (
    "Dün Ayşe Yılmaz ile konuştum, yarın Ankara merkezde buluşacağız. "
    "Please send the report to John Smith at the London office. "
    "Hastamız Zeynep Şahin İzmir hastanesinde yatıyor. "
) * 6


def _cpu_ms(fn: Callable[[str], object], text: str, repeats: int) -> float:
    start = time.process_time()
    for _ in range(repeats):
        with contextlib.suppress(GuardBlocked):  # a block still costs the scan
            fn(text)
    return (time.process_time() - start) * 1e3 / repeats


def _stream(guard: Guard, text: str) -> str:
    """The answer streamed in 4-character chunks (as the echo upstream of the tests does)."""
    stream = guard.stream_output()
    return "".join(stream.feed(text[i : i + 4]) for i in range(0, len(text), 4)) + stream.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("var"))
    parser.add_argument("--model", help="spaCy pipeline with ner (default: train the tiny one)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    model = args.model
    if model is None:
        from tests.ner_fixture import train_tiny_ner

        model = str(train_tiny_ner(Path(tempfile.mkdtemp(prefix="tiny-ner-")) / "ner"))
    base = Policy.from_yaml()
    on = base.with_overrides({"pii": {"presidio": True, "presidio_model": model}}, tenant="b")
    guards = {
        "off": Guard(base, GuardResources(home=args.home)),
        "on": Guard(on, GuardResources(home=args.home)),
    }
    extra = yaml.safe_load((CONFIG_DIR / "latency_samples.yaml").read_text(encoding="utf-8"))
    samples = {"chat_tr": CHAT, **extra, "names_tr_en": NAMES}
    samples = {k: v[:1024] for k, v in samples.items()}
    times: dict[tuple[str, str, str], list[float]] = {}
    for guard in guards.values():  # warm-up: spaCy's first calls allocate
        for text in samples.values():
            _cpu_ms(lambda t, g=guard: g.run(t, Direction.INPUT), text, 3)
    for _ in range(args.rounds):
        for sample, text in samples.items():
            for name, guard in guards.items():
                pii = guard.checks["pii"]
                parts: dict[str, Callable[[str], object]] = {
                    "pii": lambda t, c=pii: c.scan(TextView(t)),  # type: ignore[misc]
                    "all": lambda t, g=guard: g.run(t, Direction.INPUT),  # type: ignore[misc]
                    "stream": lambda t, g=guard: _stream(g, t),  # type: ignore[misc]
                }
                for part, fn in parts.items():
                    ms = _cpu_ms(fn, text, args.repeats)
                    times.setdefault((sample, part, name), []).append(ms)
    print(f"model {model}; CPU ms per 1 kB, median of {args.rounds} rounds")
    print(f"{'sample.part':<22} {'off':>8} {'on':>8} {'on/off':>7}")
    for sample in samples:
        for part in ("pii", "all", "stream"):
            off = statistics.median(times[(sample, part, "off")])
            with_ner = statistics.median(times[(sample, part, "on")])
            print(f"{sample + '.' + part:<22} {off:8.3f} {with_ner:8.3f} {with_ner / off:7.1f}")


if __name__ == "__main__":
    main()
