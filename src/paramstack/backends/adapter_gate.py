"""Admission to one in-process model: at most ``limit`` generations at once, all on one adapter.

The adapters of a base share its weights, and which adapter is active is state of the model
(PEFT's ``set_adapter``), so a switch may only happen while nothing is generating. Requests
queue first come, first served: a waiting request for another adapter stops newer requests
for the active one from overtaking it, so no adapter starves another. Switching runs on the
event loop: it only flips flags on the LoRA layers (microseconds), never touches weights.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

_NONE_YET = object()


class AdapterGate:
    def __init__(self, limit: int, switch: Callable[[str | None], None]) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._switch = switch
        self._active = 0
        self._current: object = _NONE_YET  # the adapter in use (None: the base alone)
        self._waiting: deque[tuple[str | None, asyncio.Future[None]]] = deque()

    @property
    def active(self) -> int:
        return self._active

    @asynccontextmanager
    async def slot(self, adapter: str | None) -> AsyncIterator[None]:
        """Hold a generation slot with ``adapter`` active (None: adapters disabled)."""
        await self._acquire(adapter)
        try:
            yield
        finally:
            self._release()

    def _fits(self, adapter: str | None) -> bool:
        return self._active < self.limit and (self._active == 0 or self._current == adapter)

    def _admit(self, adapter: str | None) -> None:
        if self._current != adapter:  # also true before the first admission
            self._switch(adapter)
            self._current = adapter
        self._active += 1

    async def _acquire(self, adapter: str | None) -> None:
        if not self._waiting and self._fits(adapter):
            self._admit(adapter)
            return
        ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((adapter, ticket))
        try:
            await ticket
        except BaseException:
            if ticket.done() and not ticket.cancelled():
                self._release()  # admitted just as it was cancelled: hand the slot on
            else:
                self._waiting.remove((adapter, ticket))
                self._wake()
            raise

    def _release(self) -> None:
        self._active -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiting and self._fits(self._waiting[0][0]):
            adapter, ticket = self._waiting.popleft()
            self._admit(adapter)
            ticket.set_result(None)
