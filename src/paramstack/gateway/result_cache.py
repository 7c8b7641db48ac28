"""Bounded LRU of predict results keyed by (model version id, input SHA-256).

The same image sent to the same version gives the same answer, so repeated inputs (retries,
duplicate uploads) skip preprocessing and inference. Only touched from the event loop thread.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

Key = tuple[int, str]


class ResultCache:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[Key, dict[str, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Key) -> dict[str, Any] | None:
        if self.max_entries == 0:
            return None
        value = self._items.get(key)
        if value is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: Key, value: dict[str, Any]) -> None:
        if self.max_entries == 0:
            return
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def evict_versions(self, keep: set[int]) -> None:
        for key in [k for k in self._items if k[0] not in keep]:
            del self._items[key]

    def __len__(self) -> int:
        return len(self._items)
