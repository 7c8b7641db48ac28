"""Injection-check latency with the contextual second stage vs stage 1 alone, same run.

``--head replace`` (session 5, MiniLM): inputs are the dev latent-injection side and every
sixth benign reference passage, each cut to 1 kB, timed through stage 1 alone and stage 1 + 2;
p50 / p90 per input, the ratio, the share reaching stage 2. Needs ``guard cv-context``'s head
and exported encoder under ``--home``.

``--head stacked`` (round 5, ``--encoder use-m3``): the same mixed inputs, plus the six
latency samples ``bench/guard_models.py`` times (Turkish chat, English task + document and
``configs/guard/latency_samples.yaml``), each through all checks (``Guard.run``, default
policy) and through the injection check with and without the stacked stage; all checks with
the stage = all checks + (stacked - stage 1), measured in the same loop. Needs the head
(``guard cv-context --head stacked`` writes ``<home>/guard/injection_stack_head.npz``).
Run: ``PYTHONPATH=src .venv/bin/python bench/guard_context.py --home var --head stacked``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import yaml

from paramstack.guard.context_stack import StackedDetector
from paramstack.guard.context_stage import ContextualDetector
from paramstack.guard.datasets import latent_set
from paramstack.guard.injection import InjectionDetector
from paramstack.guard.injection_model import InjectionModel
from paramstack.guard.reference_docs import reference_rows

Second = ContextualDetector | StackedDetector


def _quantiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=10)
    return {"p50_ms": round(statistics.median(values), 3), "p90_ms": round(cuts[8], 3)}


def _p50(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _mixed(first: InjectionDetector, second: Second, texts: list[str]) -> dict[str, object]:
    """Each input once through stage 1 and through stage 1 + 2 (interleaved)."""
    second.detect(texts[0])  # warm the encoder
    second.asked = 0
    timings: dict[str, list[float]] = {"stage1": [], "stage1+2": []}
    for text in texts:
        for name, fn in (("stage1", first.detect), ("stage1+2", second.detect)):
            started = time.perf_counter()
            fn(text)
            timings[name].append((time.perf_counter() - started) * 1000)
    out: dict[str, object] = {name: _quantiles(v) for name, v in timings.items()}
    out["inputs"] = len(texts)
    out["mean_chars"] = round(sum(map(len, texts)) / len(texts))
    out["stage2_share"] = round(second.asked / len(texts), 3)
    out["ratio_p50"] = round(
        statistics.median(timings["stage1+2"]) / statistics.median(timings["stage1"]), 2
    )
    return out


def _samples(home: Path, first: InjectionDetector, second: Second, repeats: int) -> object:
    """All checks p50 per 1 kB on the six latency samples, with and without the stage."""
    from guard_channels import CHAT, DOCUMENT, SAMPLES
    from paramstack.guard.checks import GuardResources
    from paramstack.guard.engine import Guard
    from paramstack.guard.evaluate import latency_ms
    from paramstack.guard.policy import Policy

    texts = {"chat": CHAT, "task+document": DOCUMENT}
    texts.update(yaml.safe_load(SAMPLES.read_text(encoding="utf-8")))
    guard = Guard(Policy.from_yaml(), GuardResources(home=home, injection_model=first.model))
    out: dict[str, object] = {}
    for name, text in texts.items():
        text = text[:1024]
        second.asked = 0
        second.detect(text)
        reached = second.asked > 0
        all_p50 = latency_ms(guard, text, repeats=repeats)["all_p50"]
        one = _p50(partial(first.detect, text), repeats)
        two = _p50(partial(second.detect, text), repeats)
        out[name] = {
            "reaches_stage2": reached,
            "all_p50_ms": round(all_p50, 3),
            "all_with_stage_p50_ms": round(all_p50 + two - one, 3),
            "injection_p50_ms": round(one, 3),
            "injection_with_stage_p50_ms": round(two, 3),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, default=Path("var"))
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--head", choices=("replace", "stacked"), default="replace")
    parser.add_argument("--encoder", default="use-m3", help="stacked only")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    guard_dir = args.home / "guard"
    root = args.home / "data" / "guard" / "unpacked"
    texts = [r.text[:1024] for r in latent_set(root, "dev")]
    texts += [r.text[:1024] for r in reference_rows(root)[::6]]
    first = InjectionDetector(InjectionModel.load(args.model or guard_dir / "injection_model.npz"))
    out: dict[str, object]
    if args.head == "replace":
        from paramstack.guard.context_encoder import SentenceEncoder
        from paramstack.guard.context_stage import ContextHead

        head = ContextHead.load(guard_dir / "injection_context_head.npz")
        encoder = SentenceEncoder(guard_dir / "context_encoder")
        out = _mixed(first, ContextualDetector(first, head, encoder.encode), texts)
    else:
        from paramstack.guard.context_encoder import encoder_named
        from paramstack.guard.context_stack import StackedHead

        stacked = StackedHead.load(guard_dir / "injection_stack_head.npz")
        second = StackedDetector(first, stacked, encoder_named(args.encoder, args.home))
        out = {"mixed": _mixed(first, second, texts)}
        out["samples"] = _samples(args.home, first, second, args.repeats)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
