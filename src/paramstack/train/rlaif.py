"""``paramstack rlaif generate``: preference pairs from the model under training.

For every prompt the model samples ``n_per_temperature`` answers at each temperature
(0.3/0.5/0.7/0.9 by default), a judge scores each on five criteria, and the best and worst
answers become ``chosen`` / ``rejected``. Pairs are appended one per line as they are made, so
an interrupted run resumes where it stopped (prompts already in the output are skipped).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paramstack.errors import InvalidInput
from paramstack.train.chat_data import check_chat_row, read_jsonl
from paramstack.train.judge import HttpJudge, Judge, RubricJudge

CHARS_PER_TOKEN = 4  # rough, for the cost estimate only


@dataclass
class RlaifConfig:
    prompts: str = "build/sft-data/heldout.jsonl"  # chat rows; the answer is the reference
    adapter: str | None = "build/sft/adapter"  # the model under training (None: base_model)
    base_model: str = ""
    out: str = "build/rlaif/pairs.jsonl"
    temperatures: list[float] = field(default_factory=lambda: [0.3, 0.5, 0.7, 0.9])
    n_per_temperature: int = 1
    max_new_tokens: int = 48
    max_prompts: int | None = None
    judge: str = "rubric"  # "rubric" (offline, labelled) or an endpoint URL
    judge_kind: str = "openai"  # openai | anthropic (for a URL judge)
    judge_model: str = "gpt-4o-mini"
    judge_api_key_env: str = "PARAMSTACK_JUDGE_API_KEY"
    price_in_per_mtok: float = 0.15  # USD per million judge input tokens (estimate only)
    price_out_per_mtok: float = 0.60
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.temperatures or any(t <= 0 for t in self.temperatures):
            raise InvalidInput("temperatures must be a non-empty list of positive numbers")
        if self.n_per_temperature < 1 or self.max_new_tokens < 1:
            raise InvalidInput("n_per_temperature and max_new_tokens must be >= 1")
        if len(self.temperatures) * self.n_per_temperature < 2:
            raise InvalidInput("need at least two answers per prompt to form a pair")


def load_prompts(path: Path, limit: int | None) -> list[dict[str, str]]:
    """``{"id", "prompt", "reference"}`` from chat rows (last user turn, assistant answer)."""
    if not Path(path).is_file():
        raise InvalidInput(f"prompt file not found: {path}", param="prompts")
    out = []
    for i, row in enumerate(read_jsonl(path), 1):
        messages = check_chat_row(row, f"{path}:{i}")
        prompt = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        pid = hashlib.sha256(prompt.encode()).hexdigest()[:16]
        out.append({"id": pid, "prompt": prompt, "reference": messages[-1]["content"]})
    return out[:limit] if limit else out


def make_judge(cfg: RlaifConfig) -> Judge:
    if cfg.judge == "rubric":
        return RubricJudge()
    if not cfg.judge.startswith(("http://", "https://")):
        raise InvalidInput("judge must be 'rubric' or an http(s) URL", param="judge")
    key = os.environ.get(cfg.judge_api_key_env, "")
    return HttpJudge(cfg.judge, cfg.judge_model, api_key=key, kind=cfg.judge_kind)


def cost_estimate(cfg: RlaifConfig, prompts: list[dict[str, str]]) -> dict[str, float]:
    """Judge tokens and USD for the whole run (zero for the offline rubric judge)."""
    answers = len(cfg.temperatures) * cfg.n_per_temperature
    chars = sum(len(p["prompt"]) + len(p["reference"]) + 600 for p in prompts)
    tokens_in = answers * (chars / CHARS_PER_TOKEN + len(prompts) * cfg.max_new_tokens)
    tokens_out = answers * len(prompts) * 40
    paid = cfg.judge != "rubric"
    usd = (tokens_in * cfg.price_in_per_mtok + tokens_out * cfg.price_out_per_mtok) / 1e6
    return {
        "judge_calls": float(answers * len(prompts)),
        "judge_tokens_in": round(tokens_in),
        "judge_tokens_out": float(tokens_out),
        "usd": round(usd, 4) if paid else 0.0,
    }


def done_ids(out: Path) -> set[str]:
    """Prompt ids already in the output; drops a torn last line left by a crash."""
    if not out.is_file():
        return set()
    text = out.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
        out.write_text(text, encoding="utf-8")
    return {json.loads(line)["id"] for line in text.splitlines() if line.strip()}


def sample_answers(
    model: Any, tokenizer: Any, prompt: str, cfg: RlaifConfig, seed: int
) -> list[tuple[float, str]]:
    import torch

    chat = [{"role": "user", "content": prompt}]
    ids = tokenizer.apply_chat_template(
        chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out: list[tuple[float, str]] = []
    for k, temperature in enumerate(cfg.temperatures):
        torch.manual_seed(seed * 1000 + k)
        with torch.no_grad():
            gen = model.generate(
                **ids, do_sample=True, temperature=temperature, top_p=0.95,
                max_new_tokens=cfg.max_new_tokens, num_return_sequences=cfg.n_per_temperature,
                pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip
        width = ids["input_ids"].shape[1]
        for row in gen:
            text = tokenizer.decode(row[width:], skip_special_tokens=True).strip()
            out.append((temperature, text))
    return out


def make_pair(
    item: dict[str, str], answers: list[tuple[float, str]], judge: Judge
) -> dict[str, Any]:
    scored: list[dict[str, Any]] = []
    for temperature, text in answers:
        j = judge.score(item["prompt"], text, item["reference"])
        scored.append(
            {"text": text, "temperature": temperature, "scores": j.scores, "total": j.total}
        )
    ranked = sorted(scored, key=lambda c: float(c["total"]), reverse=True)
    best, worst = ranked[0], ranked[-1]
    return {
        "id": item["id"],
        "prompt": item["prompt"],
        "reference": item["reference"],
        "chosen": best["text"],
        "rejected": worst["text"],
        "chosen_score": round(best["total"], 4),
        "rejected_score": round(worst["total"], 4),
        "margin": round(best["total"] - worst["total"], 4),
        "judge": judge.name,
        "candidates": scored,
    }


def generate_pairs(
    cfg: RlaifConfig,
    *,
    judge: Judge | None = None,
    progress: Callable[[int, int], None] | None = None,
    model_and_tokenizer: tuple[Any, Any] | None = None,
) -> dict[str, Any]:
    """Append a pair per pending prompt to ``cfg.out``; returns counts and the model used."""
    from paramstack.train.adapters import load_with_adapter, resolve_base

    prompts = load_prompts(Path(cfg.prompts), cfg.max_prompts)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    skip = done_ids(out)
    pending = [p for p in prompts if p["id"] not in skip]
    judge = judge or make_judge(cfg)
    if model_and_tokenizer is not None:
        model, tokenizer = model_and_tokenizer
    elif cfg.adapter:
        model, tokenizer = load_with_adapter(Path(cfg.adapter), base=cfg.base_model)
    else:
        from paramstack.llm.base_model import load_causal_lm

        model, tokenizer = load_causal_lm(resolve_base(cfg.base_model))
    source = cfg.adapter or cfg.base_model or "default-base"
    with out.open("a", encoding="utf-8") as fh:
        for n, item in enumerate(pending, 1):
            index = prompts.index(item)
            pair = make_pair(
                item, sample_answers(model, tokenizer, item["prompt"], cfg, cfg.seed + index), judge
            )
            pair["model"] = source
            fh.write(json.dumps(pair, ensure_ascii=False) + "\n")
            fh.flush()
            if progress is not None:
                progress(n, len(pending))
    return {"prompts": len(prompts), "skipped": len(skip & {p["id"] for p in prompts}),
            "written": len(pending), "judge": judge.name}  # fmt: skip
