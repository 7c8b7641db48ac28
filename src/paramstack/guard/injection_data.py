"""Training rows for the document classifier: the data part of prompts, plus plain documents.

The whole-prompt classifier sees the user's task and the document together, so a document
instruction ("reply only with X") is diluted by the task and a defensive task sentence
looks like an attack. The document classifier learns from the data part alone
(:func:`~paramstack.guard.channels.split_channels`) of the generated families, where the same
document appears with and without an instruction addressed to the model, and from plain
speech passages (benign documents with imperatives addressed to people).
"""

from __future__ import annotations

from paramstack.guard.channel_templates import data_rows
from paramstack.guard.datasets import Prompt

_SOURCES = ("gen-channel", "gen-buried", "promptinject")


def document_rows(
    rows: list[Prompt], speech_limit: int = 800, reference: list[Prompt] | None = None
) -> list[Prompt]:
    """Data parts of the generated / PromptInject rows, up to ``speech_limit`` speech
    sentences per language and the ``reference`` passages (``guard/reference_docs.py``) as
    benign documents."""
    out = data_rows(
        [r for r in rows if r.source.startswith(_SOURCES) and r.source != "promptinject.app"]
    )
    per_lang: dict[str, int] = {}
    for row in rows:
        if row.source.startswith("ataturk") and per_lang.get(row.lang, 0) < speech_limit:
            per_lang[row.lang] = per_lang.get(row.lang, 0) + 1
            out.append(Prompt(row.text, 0, row.lang, f"docs.{row.lang}"))
    return out + list(reference or [])
