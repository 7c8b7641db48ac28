"""SFT examples in JSONL chat format, built offline from a text corpus plus a written seed set.

Rows are ``{"messages": [{"role": "user", ...}, {"role": "assistant", ...}], "task": ...}``.
Two tasks come from plain corpus rows (``{"id", "text", "source"}``, the output of
``paramstack data sample|clean``), so no model or annotator is needed:

* ``continuation``: the first words of a passage → the words that follow (the base learns the
  register and morphology of the corpus);
* ``lead_summary``: a passage → its first sentence ("lead-1", the standard extractive summary
  baseline in news summarisation).

The seed set (``configs/train/seed_tr_en.jsonl``) adds hand-written TR/EN instructions with
answers, so the adapter keeps following ordinary requests.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from paramstack.errors import InvalidInput

ROLES = ("system", "user", "assistant")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
CONTINUE_PROMPT = "Aşağıdaki metni aynı üslupla devam ettir:\n\n{text}"
SUMMARY_PROMPT = "Aşağıdaki paragrafın ana fikrini tek cümleyle yaz:\n\n{text}"


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL file; a broken line is an error naming the file and line."""
    with Path(path).open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise InvalidInput(f"{path}:{number}: each line must be a JSON object")
            yield row


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write all rows or nothing (temp file + rename); returns the row count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    count = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    os.replace(tmp, path)
    return count


def corpus_texts(inputs: Iterable[Path]) -> list[str]:
    """``text`` of every row in the JSONL files (or directories of them) given."""
    texts: list[str] = []
    for item in inputs:
        files = sorted(Path(item).glob("*.jsonl")) if Path(item).is_dir() else [Path(item)]
        if not files or not all(f.is_file() for f in files):
            raise InvalidInput(f"no JSONL corpus files at {item}", param="corpus")
        for file in files:
            texts.extend(str(r["text"]) for r in read_jsonl(file) if str(r.get("text", "")))
    return texts


def check_chat_row(row: dict[str, Any], where: str = "row") -> list[dict[str, str]]:
    """The row's messages, or a clear error: roles known, content text, assistant last."""
    messages = row.get("messages")
    if not isinstance(messages, list) or len(messages) < 2:
        raise InvalidInput(f"{where}: 'messages' must be a list of at least two messages")
    for msg in messages:
        if not isinstance(msg, dict) or msg.get("role") not in ROLES:
            raise InvalidInput(f"{where}: every message needs a role in {ROLES}")
        if not isinstance(msg.get("content"), str) or not msg["content"].strip():
            raise InvalidInput(f"{where}: every message needs non-empty text content")
    if messages[-1]["role"] != "assistant":
        raise InvalidInput(f"{where}: the last message must be the assistant's answer")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def load_chat_file(path: Path) -> list[list[dict[str, str]]]:
    rows = [check_chat_row(r, f"{path}:{i}") for i, r in enumerate(read_jsonl(path), 1)]
    if not rows:
        raise InvalidInput(f"{path}: no examples", param="data")
    return rows


def to_prompt_completion(messages: list[dict[str, str]]) -> dict[str, Any]:
    """TRL's conversational prompt/completion form: the loss covers only the answer."""
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def _chat(prompt: str, answer: str, task: str, source: str) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
        "task": task,
        "source": source,
    }


def corpus_examples(text: str, *, words: int = 24, source: str = "corpus") -> list[dict[str, Any]]:
    """Up to two examples from one passage (none when it is too short to split)."""
    out: list[dict[str, Any]] = []
    tokens = text.split()
    if len(tokens) >= 16:
        k = min(words, len(tokens) // 2)
        head, tail = " ".join(tokens[:k]), " ".join(tokens[k : 2 * k])
        out.append(_chat(CONTINUE_PROMPT.format(text=head), tail, "continuation", source))
    sentences = [s for s in SENTENCE_END.split(text.strip()) if s]
    if len(sentences) >= 3 and 4 <= len(sentences[0].split()) <= 40:
        passage = " ".join(" ".join(sentences).split()[: words * 4])
        out.append(_chat(SUMMARY_PROMPT.format(text=passage), sentences[0], "lead_summary", source))
    return out


def build_sft_examples(
    texts: list[str],
    seed_rows: list[list[dict[str, str]]],
    *,
    max_examples: int,
    heldout_fraction: float,
    seed: int,
    words: int = 24,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, heldout) example lists, shuffled with ``seed``; seed rows always in train."""
    if not 0 <= heldout_fraction < 1:
        raise InvalidInput("heldout_fraction must be in [0, 1)", param="heldout_fraction")
    generated = [ex for text in texts for ex in corpus_examples(text, words=words)]
    rng = random.Random(seed)
    rng.shuffle(generated)
    generated = generated[: max(0, max_examples - len(seed_rows))]
    n_heldout = round(len(generated) * heldout_fraction)
    seeds = [{"messages": m, "task": "seed", "source": "seed"} for m in seed_rows]
    train = seeds + generated[n_heldout:]
    rng.shuffle(train)
    return train, generated[:n_heldout]
