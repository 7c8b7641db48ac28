"""Judge win-rate of model A over model B on the same prompts (ties count half).

Both models answer greedily (deterministic), the judge scores both answers against the
reference, and A wins a prompt when its mean score is higher.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paramstack.train.judge import Judge

TIE_EPS = 1e-6


def greedy_answer(model: Any, tokenizer: Any, prompt: str, max_new_tokens: int) -> str:
    import torch

    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        add_generation_prompt=True, return_tensors="pt", return_dict=True,
    )  # fmt: skip
    with torch.no_grad():
        gen = model.generate(
            **ids, do_sample=False, max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
        )  # fmt: skip
    return str(
        tokenizer.decode(gen[0][ids["input_ids"].shape[1] :], skip_special_tokens=True)
    ).strip()


def win_rate(
    a: tuple[Any, Any],
    b: tuple[Any, Any],
    items: list[dict[str, str]],
    judge: Judge,
    *,
    max_new_tokens: int = 48,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """``items`` hold ``prompt`` and ``reference``; returns win-rate, counts and examples."""
    wins = losses = ties = 0
    examples: list[dict[str, Any]] = []
    for i, item in enumerate(items, 1):
        ans_a = greedy_answer(*a, item["prompt"], max_new_tokens)
        ans_b = greedy_answer(*b, item["prompt"], max_new_tokens)
        score_a = judge.score(item["prompt"], ans_a, item.get("reference")).total
        score_b = judge.score(item["prompt"], ans_b, item.get("reference")).total
        if abs(score_a - score_b) <= TIE_EPS:
            ties += 1
        elif score_a > score_b:
            wins += 1
        else:
            losses += 1
        if len(examples) < 3:
            examples.append({"prompt": item["prompt"], "a": ans_a, "b": ans_b,
                             "score_a": score_a, "score_b": score_b})  # fmt: skip
        if progress is not None:
            progress(i, len(items))
    n = max(1, wins + losses + ties)
    return {
        "win_rate": (wins + 0.5 * ties) / n,
        "wins": wins,
        "losses": losses,
        "ties": ties,
        "judge": judge.name,
        "examples": examples,
    }
