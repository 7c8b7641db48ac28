"""Which bytes of a response the attestation covers.

The signature covers the answer — ``prediction``, ``confidence``, ``probabilities`` and, for
ECG strips, ``beats`` and ``summary`` — serialised with RFC 8785, not timings or request
metadata (those differ between a response and a replay of it). A verifier needs only this
function, the response body and the public key set::

    report = verify(body["attestation"], prediction_output(body), jwks)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import rfc8785

SIGNED_KEYS = ("prediction", "confidence", "probabilities", "beats", "summary")


def prediction_output(body: Mapping[str, Any]) -> bytes:
    return rfc8785.dumps({k: body[k] for k in SIGNED_KEYS if body.get(k) is not None})


def completion_output(texts: list[str], grounding: list[str] | None = None) -> bytes:
    """Chat and completion answers: the final text of every choice, in index order, as
    RFC 8785 JSON — what the caller received after the guard, streamed or not. A grounded
    (RAG) answer also covers its chunk refs (``doc#chunk@version``, from ``rag.citations``),
    so the signature proves which retrieved text the answer was built on."""
    if grounding is None:
        return rfc8785.dumps(texts)
    return rfc8785.dumps({"choices": texts, "grounding": grounding})


def grounding_refs(body: Mapping[str, Any]) -> list[str] | None:
    """The chunk refs of a response's ``rag`` extension field (None when not grounded)."""
    rag = body.get("rag")
    if not isinstance(rag, Mapping):
        return None
    return [f"{c['chunk_id']}@{c['version']}" for c in rag.get("citations", [])]


def completion_texts(body: Mapping[str, Any]) -> list[str]:
    """The choice texts of a whole chat or completion response body."""
    texts = []
    for choice in sorted(body.get("choices", []), key=lambda c: int(c.get("index", 0))):
        message = choice.get("message")
        text = message.get("content") if isinstance(message, dict) else choice.get("text")
        texts.append(text if isinstance(text, str) else "")
    return texts
