"""Guard latency per 1 kB with each whole-prompt model kind, with and without window scoring,
all in the same run.

Samples: the texts ``bench/guard_channels.py`` times (Turkish chat, English task + document,
and the 1 kB English texts of ``configs/guard/latency_samples.yaml``). Each goes through all
checks (``Guard.run``, default policy: channels off) once per model file and window setting;
the ratios are against the first model without windows (the baseline, measured in this run).
Run: ``PYTHONPATH=src .venv/bin/python bench/guard_models.py --home var
--model linear=var/guard/injection_model.npz --model deep=var/deep/injection_model.npz``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from guard_channels import CHAT, DOCUMENT, SAMPLES
from paramstack.guard.checks import GuardResources
from paramstack.guard.engine import Guard
from paramstack.guard.evaluate import latency_ms
from paramstack.guard.injection_model import InjectionModel
from paramstack.guard.policy import Policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, default=Path("var"))
    parser.add_argument("--model", action="append", required=True, help="NAME=PATH (.npz)")
    parser.add_argument("--windows", default="0,3", help="window widths to time per model")
    parser.add_argument("--repeats", type=int, default=400)
    args = parser.parse_args()
    texts = {"chat": CHAT, "task+document": DOCUMENT}
    texts.update(yaml.safe_load(SAMPLES.read_text(encoding="utf-8")))
    policy = Policy.from_yaml()
    out: dict[str, dict[str, float]] = {}
    variants: list[str] = []
    for spec in args.model:
        name, _, path = spec.partition("=")
        model = InjectionModel.load(Path(path))
        for width in (int(w) for w in args.windows.split(",")):
            model.windows = width
            variant = f"{name}+w{width}" if width else name
            variants.append(variant)
            guard = Guard(policy, GuardResources(home=args.home, injection_model=model))
            for text_name, text in texts.items():
                lat = latency_ms(guard, text[:1024], repeats=args.repeats)
                out[f"{text_name} {variant}"] = {
                    "all_p50_ms": round(lat["all_p50"], 3),
                    "injection_p50_ms": round(lat["injection_p50"], 3),
                }
    base = variants[0]
    for variant in variants[1:]:
        for text_name in texts:
            mine, ref = out[f"{text_name} {variant}"], out[f"{text_name} {base}"]
            out[f"{text_name} {variant}/{base}"] = {
                "all": round(mine["all_p50_ms"] / ref["all_p50_ms"], 2),
                "injection": round(mine["injection_p50_ms"] / ref["injection_p50_ms"], 2),
            }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
