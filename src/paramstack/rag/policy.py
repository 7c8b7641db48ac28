"""Per-tenant retrieval policy for chat: ``off`` | ``always`` | ``auto``.

Kept in ``<home>/rag/policies.json`` (written by ``paramstack rag policy``, read by the
gateway when the file changes) rather than a new tenants column, so the RAG module needs no
schema migration. A tenant without an entry gets ``auto`` when it has a ``rag_collection``
and ``off`` otherwise.

* ``off``: no retrieval unless the request opts in (``"rag": {"enabled": true}``).
* ``always``: retrieve for every chat request unless it opts out (``"enabled": false``).
* ``auto``: retrieve, but ground only on chunks that lexical and dense search both rank in
  their top ``k`` (RRF score at least 2/(60+k)): no context is better than weak context.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from paramstack.errors import InvalidInput

POLICIES = ("off", "always", "auto")


class PolicyBook:
    def __init__(self, home: Path) -> None:
        self.path = home / "rag" / "policies.json"
        self._lock = threading.Lock()
        self._mtime = -1.0
        self._data: dict[str, str] = {}

    def _load(self) -> dict[str, str]:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return {}
        with self._lock:
            if mtime != self._mtime:
                self._data = json.loads(self.path.read_text())
                self._mtime = mtime
            return self._data

    def get(self, tenant: str, has_collection: bool) -> str:
        return self._load().get(tenant, "auto" if has_collection else "off")

    def set(self, tenant: str, policy: str) -> None:
        if policy not in POLICIES:
            raise InvalidInput(f"policy must be one of {', '.join(POLICIES)}", param="policy")
        data = dict(self._load()) | {tenant: policy}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)
