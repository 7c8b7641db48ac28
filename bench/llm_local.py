"""In-process transformers backend vs a plain ``model.generate`` loop: generated tokens/s.

Both sides use the same model object, the same greedy decoding and the same chat prompts, in
the same run and interleaved round by round (so machine load drifts hit both alike). The
backend's side is what a gateway request costs beyond the model: the chat template, the
per-step text deltas and stop checks, the worker thread and the queue back to the event loop.
Run: ``.venv/bin/python bench/llm_local.py [--model DIR] [--max-tokens 32] [--rounds 3]``
(without ``--model``, the offline SmolLM2-135M-Instruct is fetched into ``.cache/``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from paramstack.backends.protocol import BackendConfig, build_backend
from paramstack.llm.base_model import DEFAULT_BASE_NAME, fetch_default_base

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain what a hash function is in two sentences.",
    "List three uses of copper.",
]


def plain(backend: Any, question: str, max_tokens: int) -> int:
    """Generated tokens (up to and including the end token) of a bare greedy generate."""
    import torch

    tokenizer, model = backend.tokenizer, backend.model
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )["input_ids"]
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=max_tokens, do_sample=False)
    new = out[0][ids.shape[1] :].tolist()
    eos = tokenizer.eos_token_id
    return new.index(eos) + 1 if eos in new else len(new)


async def served(backend: Any, question: str, max_tokens: int, stream: bool) -> int:
    body = {
        "model": "bench",
        "messages": [{"role": "user", "content": question}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    if not stream:
        return int((await backend.chat(body)).usage.completion_tokens)
    tokens = 0
    async for chunk in backend.stream_chat(body):
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()
    cache = Path(__file__).resolve().parents[1] / ".cache"
    model = args.model or fetch_default_base(
        cache / "models" / DEFAULT_BASE_NAME, cache=cache / "wheels"
    )
    options = (("model", str(model)), ("threads", args.threads))
    backend = build_backend(BackendConfig(kind="transformers", options=options))
    plain(backend, PROMPTS[0], 4)  # warm-up: first-call allocations on both sides
    asyncio.run(served(backend, PROMPTS[0], 4, False))
    totals = {name: [0, 0.0] for name in ("plain_generate", "backend_whole", "backend_stream")}
    for _ in range(args.rounds):
        for question in PROMPTS:
            for name in totals:
                start = time.perf_counter()
                if name == "plain_generate":
                    tokens = plain(backend, question, args.max_tokens)
                else:
                    stream = name == "backend_stream"
                    tokens = asyncio.run(served(backend, question, args.max_tokens, stream))
                totals[name][0] += tokens
                totals[name][1] += time.perf_counter() - start
    rates = {name: tokens / seconds for name, (tokens, seconds) in totals.items()}
    results: dict[str, Any] = {f"{k}_tokens_per_s": round(v, 2) for k, v in rates.items()}
    results["tokens_each"] = {k: int(v[0]) for k, v in totals.items()}
    for name in ("backend_whole", "backend_stream"):
        results[f"{name}_vs_plain"] = round(rates[name] / rates["plain_generate"], 3)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
