"""RAG settings read from the environment: kept out of the shared Settings object so the
gateway's config does not grow with every optional module.

- ``PARAMSTACK_RAG_STORE``: where the store lives (a path or a URL), else ``<home>/rag/store``;
  the URL forms are documented in :func:`paramstack.rag.stores.protocol.open_store`.
- ``PARAMSTACK_RAG_API_EMBEDDERS``: the embedder specs a tenant may name through the API
  (comma-separated). An embedder spec is server configuration: ``openai:<url>`` would send the
  embedding API key to any URL, ``own:``/``st:`` would load any server path or hub id, so the
  API accepts only the bundled models and what the operator lists here (the CLI takes any).
"""

from __future__ import annotations

import os
from pathlib import Path

from paramstack.errors import Forbidden

BUNDLED_EMBEDDERS = ("use-m3", "e5-small", "e5-small-enpt")


def store_url(home: Path) -> str:
    return os.environ.get("PARAMSTACK_RAG_STORE") or str(home / "rag" / "store")


def api_embedders() -> frozenset[str]:
    listed = os.environ.get("PARAMSTACK_RAG_API_EMBEDDERS", "")
    return frozenset(BUNDLED_EMBEDDERS) | {s.strip() for s in listed.split(",") if s.strip()}


def check_api_embedder(spec: str) -> None:
    """Refuse a spec (or a ``mix:`` part) the operator has not allowed for API callers."""
    allowed = api_embedders()
    if spec in allowed:
        return
    parts = [p.partition("*")[2] for p in spec[4:].split(";")] if spec.startswith("mix:") else []
    if parts and all(p in allowed for p in parts):
        return
    raise Forbidden(
        "this embedder is not allowed through the API: use one of "
        f"{', '.join(sorted(allowed))} (operators add more with PARAMSTACK_RAG_API_EMBEDDERS)",
        code="embedder_not_allowed",
        param="embedder",
    )
