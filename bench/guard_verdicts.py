"""The guard's cost per chat turn with remembered prompt verdicts on and off, in one run.

A client resends the system prompt and the whole history with every turn. The conversation
here: a system prompt (one of the 1 kB texts of ``configs/guard/latency_samples.yaml``), then
``--turns`` user turns of a short Turkish or English question, each answered by a short
assistant message that the next turn sends back. Each turn's prompt goes through
``ChatGuard.guard_prompt`` (every message screened, as the gateway does) with the default
policy, ``verdict_cache`` 4096 (on) and 0 (off); the figure is the median CPU time per turn
over ``--conversations`` conversations, each with new user texts (so only what a real client
resends repeats). ``fresh`` is the worst case for the cache: one new single-message prompt per
request (every lookup a miss, the digest and the store paid on top of the scan).
Needs trained models under ``--home`` for the classifier (``guard train-injection``), else
the patterns alone run.
Run: ``PYTHONPATH=src .venv/bin/python bench/guard_verdicts.py --home var``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from paramstack.gateway.chat_guard import ChatGuard
from paramstack.guard.checks import GuardResources
from paramstack.guard.datasets import CONFIG_DIR
from paramstack.guard.engine import Guard
from paramstack.guard.policy import Policy

QUESTIONS = [
    "Bu raporu üç maddede özetler misin?",
    "What are the main risks in the second section?",
    "Sözleşmenin fesih maddesi ne diyor?",
    "Can you list the dates mentioned above?",
    "Hasta için önerilen doz nedir?",
]
ANSWER = "Here is a short answer based on the text above, in three points."


def _turns(system: str, turns: int, salt: int) -> list[list[dict[str, Any]]]:
    """The prompt of every turn: system, then the history so far, then the new question."""
    history: list[dict[str, Any]] = [{"role": "system", "content": system}]
    prompts = []
    for i in range(turns):
        question = f"{QUESTIONS[i % len(QUESTIONS)]} ({salt}-{i})"
        history.append({"role": "user", "content": question})
        prompts.append([dict(m) for m in history])
        history.append({"role": "assistant", "content": f"{ANSWER} [{salt}-{i}]"})
    return prompts


def _cpu_per_turn(guard: ChatGuard, system: str, turns: int, conversations: int) -> list[float]:
    per_turn: list[list[float]] = [[] for _ in range(turns)]
    for c in range(conversations):
        for i, messages in enumerate(_turns(system, turns, c)):
            t0 = time.process_time()
            guard.guard_prompt({"messages": messages}, tenant="bench")
            per_turn[i].append((time.process_time() - t0) * 1000)
    return [statistics.median(v) for v in per_turn]


def _fresh(guard: ChatGuard, n: int, start: int) -> float:
    t0 = time.process_time()
    for i in range(start, start + n):
        text = f"{QUESTIONS[i % len(QUESTIONS)]} #{i}"
        guard.guard_prompt({"messages": [{"role": "user", "content": text}]}, tenant="bench")
    return (time.process_time() - t0) * 1000 / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=Path("var"))
    ap.add_argument("--turns", type=int, default=8)
    ap.add_argument("--conversations", type=int, default=30)
    ap.add_argument("--sample", default="clinical_note", help="system prompt: a latency sample")
    ap.add_argument("--out", type=Path, default=Path("bench/results/guard_verdicts.json"))
    args = ap.parse_args()
    samples = yaml.safe_load((CONFIG_DIR / "latency_samples.yaml").read_text(encoding="utf-8"))
    system = samples[args.sample]
    base = Policy.from_yaml()
    guards = {
        name: ChatGuard(
            Guard(base.model_copy(update={"verdict_cache": n}), GuardResources(home=args.home))
        )
        for name, n in (("off", 0), ("on", 4096))
    }
    for g in guards.values():  # warm up (model load, regex caches) outside the figures
        _cpu_per_turn(g, system, 2, 2)
    turns = {n: _cpu_per_turn(g, system, args.turns, args.conversations) for n, g in guards.items()}
    rounds: dict[str, list[float]] = {n: [] for n in guards}
    for r in range(7):  # alternating rounds: the machine's drift hits both sides alike
        for n, g in guards.items():
            rounds[n].append(_fresh(g, 500, r * 500))
    fresh = {n: statistics.median(v) for n, v in rounds.items()}
    print(f"system prompt: {args.sample} ({len(system)} chars); {args.conversations} conversations")
    print("turn  off ms  on ms  off/on")
    for i, (off, on) in enumerate(zip(turns["off"], turns["on"], strict=True)):
        print(f"{i + 1:>4}  {off:6.3f}  {on:5.3f}  {off / on:5.1f}x")
    total_off, total_on = sum(turns["off"]), sum(turns["on"])
    print(f"conversation of {args.turns} turns: {total_off:.2f} ms off, {total_on:.2f} ms on "
          f"({total_off / total_on:.1f}x)")  # fmt: skip
    print(f"fresh one-message prompts (all misses): {fresh['off'] * 1000:.1f} µs off, "
          f"{fresh['on'] * 1000:.1f} µs on ({fresh['on'] / fresh['off']:.3f}x)")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"turns": turns, "fresh_ms": fresh, "sample": args.sample}))


if __name__ == "__main__":
    main()
