"""The pipeline's evaluation stage: perplexity base vs SFT vs DPO, judge win-rates
(SFT vs base, DPO vs SFT) and the DPO held-out reward figures, in one flat metrics file
that ``dvc metrics diff`` can compare between runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paramstack.train.judge import Judge


@dataclass
class EvalConfig:
    heldout: str = "build/data/heldout"  # corpus rows (or chat rows) for perplexity
    prompts: str = "build/sft-data/heldout.jsonl"  # chat rows for the win-rates
    base_model: str = ""
    sft_adapter: str | None = "build/sft/adapter"
    dpo_adapter: str | None = "build/dpo/adapter"
    dpo_metrics: str | None = "build/dpo/metrics.json"
    max_texts: int | None = 50
    max_prompts: int | None = 20
    max_length: int = 256
    max_new_tokens: int = 48
    judge: str = "rubric"
    out: str = "build/eval/metrics.json"


def _load(adapter: str | None, base: str) -> tuple[Any, Any]:
    from paramstack.llm.base_model import load_causal_lm
    from paramstack.train.adapters import merged_model, resolve_base

    if adapter:
        return merged_model(Path(adapter), base=base)
    return load_causal_lm(resolve_base(base))


def evaluate_all(
    cfg: EvalConfig, judge: Judge, *, log: Callable[[str], None] = print
) -> dict[str, Any]:
    from paramstack.evaluate.perplexity import heldout_texts, perplexity
    from paramstack.evaluate.winrate import win_rate
    from paramstack.train.rlaif import load_prompts

    texts = heldout_texts(Path(cfg.heldout), cfg.max_texts)
    items = load_prompts(Path(cfg.prompts), cfg.max_prompts)
    models = {"base": _load(None, cfg.base_model)}
    if cfg.sft_adapter:
        models["sft"] = _load(cfg.sft_adapter, cfg.base_model)
    if cfg.dpo_adapter:
        models["dpo"] = _load(cfg.dpo_adapter, cfg.base_model)
    metrics: dict[str, Any] = {"judge": judge.name, "heldout_texts": len(texts)}
    for name, (model, tok) in models.items():
        scored = perplexity(model, tok, texts, max_length=cfg.max_length)
        metrics[f"ppl_{name}"] = round(scored["perplexity"], 4)
        metrics[f"bpb_{name}"] = round(scored["bits_per_byte"], 4)  # across tokenizers
        log(f"perplexity {name}: {metrics[f'ppl_{name}']}, bits/byte {metrics[f'bpb_{name}']}")
    pairs = [("sft", "base"), ("dpo", "sft"), ("dpo", "base")]
    for a, b in pairs:
        if a in models and b in models:
            result = win_rate(models[a], models[b], items, judge, max_new_tokens=cfg.max_new_tokens)
            metrics[f"winrate_{a}_vs_{b}"] = round(result["win_rate"], 4)
            counts = f"{result['wins']}/{result['losses']}/{result['ties']} w/l/t"
            log(f"win-rate {a} vs {b}: {result['win_rate']:.3f} ({counts})")
    if cfg.dpo_metrics and Path(cfg.dpo_metrics).is_file():
        dpo = json.loads(Path(cfg.dpo_metrics).read_text())["metrics"]
        metrics["dpo_reward_accuracy"] = dpo["reward_accuracy"]
        metrics["dpo_reward_margin"] = dpo["reward_margin"]
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
