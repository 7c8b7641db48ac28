"""Injection-check latency with the contextual second stage vs stage 1 alone, same run.

Inputs: the dev latent-injection side (attacks and clean documents, studied while building)
and every sixth benign reference passage, each cut to 1 kB. Each input is timed through stage
1 alone (``InjectionDetector``) and through stage 1 + 2 (``ContextualDetector``, real ONNX
encoder); reports p50 / p90 per input, the ratio, and the share of inputs that reached stage
2. Needs ``guard cv-context`` (head + exported encoder) and a stage-1 model under ``--home``.
Run: ``PARAMSTACK_HOME=var PYTHONPATH=src .venv/bin/python bench/guard_context.py --home var``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from paramstack.guard.context_encoder import SentenceEncoder
from paramstack.guard.context_stage import ContextHead, ContextualDetector
from paramstack.guard.datasets import latent_set
from paramstack.guard.injection import InjectionDetector
from paramstack.guard.injection_model import InjectionModel
from paramstack.guard.reference_docs import reference_rows


def _quantiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=10)
    return {"p50_ms": round(statistics.median(values), 3), "p90_ms": round(cuts[8], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, default=Path("var"))
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    guard_dir = args.home / "guard"
    root = args.home / "data" / "guard" / "unpacked"
    texts = [r.text[:1024] for r in latent_set(root, "dev")]
    texts += [r.text[:1024] for r in reference_rows(root)[::6]]
    first = InjectionDetector(InjectionModel.load(args.model or guard_dir / "injection_model.npz"))
    encoder = SentenceEncoder(guard_dir / "context_encoder")
    second = ContextualDetector(
        first, ContextHead.load(guard_dir / "injection_context_head.npz"), encoder.encode
    )
    second.detect(texts[0])  # warm the session
    second.asked = 0
    timings: dict[str, list[float]] = {"stage1": [], "stage1+2": []}
    for text in texts:
        for name, det in (("stage1", first), ("stage1+2", second)):
            started = time.perf_counter()
            det.detect(text)
            timings[name].append((time.perf_counter() - started) * 1000)
    out: dict[str, object] = {name: _quantiles(v) for name, v in timings.items()}
    out["inputs"] = len(texts)
    out["mean_chars"] = round(sum(map(len, texts)) / len(texts))
    out["stage2_share"] = round(second.asked / len(texts), 3)
    out["ratio_p50"] = round(
        statistics.median(timings["stage1+2"]) / statistics.median(timings["stage1"]), 2
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
