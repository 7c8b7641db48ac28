"""A bridge to EleutherAI's lm-evaluation-harness for users who have it and its task data.

It is an optional import (not a dependency: its tasks download data sets from the hub); when
it is missing the caller gets a message saying how to install it, not a traceback.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from paramstack.errors import InvalidInput


def harness_available() -> bool:
    return importlib.util.find_spec("lm_eval") is not None


def run_harness(
    model: Any, tokenizer: Any, tasks: list[str], *, limit: int | None = None
) -> dict[str, Any]:
    """Run harness ``tasks`` on an in-memory model (an adapter merged or not); returns results."""
    if not harness_available():
        raise InvalidInput(
            "lm-evaluation-harness is not installed: `pip install lm-eval` (its tasks also "
            "need their data sets from the Hugging Face hub)",
            param="tasks",
        )
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    wrapped = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=1)
    out = lm_eval.simple_evaluate(model=wrapped, tasks=tasks, limit=limit)
    return dict(out.get("results", {})) if out else {}
