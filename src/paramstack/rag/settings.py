"""Where the RAG store lives: ``PARAMSTACK_RAG_STORE`` (a path or a URL), else ``<home>/rag/store``.

Kept out of the shared Settings object so the gateway's config does not grow with every
optional module; the URL forms are documented in :func:`paramstack.rag.stores.protocol.open_store`.
"""

from __future__ import annotations

import os
from pathlib import Path


def store_url(home: Path) -> str:
    return os.environ.get("PARAMSTACK_RAG_STORE") or str(home / "rag" / "store")
