"""The guard policy on the OpenAI routes: prompts are scanned before the upstream sees them
(PII masked, attacks blocked), answers before the caller does (new PII masked, the caller's own
placeholders restored, the tenant domain's disclaimer appended) — streamed answers included,
through one :class:`~paramstack.guard.streaming.OutputStream` per choice.

Each tenant may override parts of the base policy (``paramstack tenants set-policy``):
:meth:`ChatGuard.for_tenant` returns the guard built for the tenant's override. Those guards are
built by :meth:`ChatGuard.prepare` when the key ring is refreshed, before the new ring can route
a request to them, so the request path only does a dict lookup (no YAML, no model loading).
An override that fails to build is remembered as failed (logged once) until the override or
the base guard changes, so a broken tenant costs a dict lookup per request, not a rebuild.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from anyio import to_thread

from paramstack.config import Settings
from paramstack.errors import ParamstackError, Unavailable
from paramstack.guard import overrides
from paramstack.guard.engine import Guard
from paramstack.guard.pii import MaskSession
from paramstack.guard.streaming import OutputStream
from paramstack.registry.key_ring import TenantPolicy

log = logging.getLogger(__name__)
_DATA_ROLES = frozenset({"tool", "function"})  # messages that carry documents, not the caller
_Key = tuple[str, str]  # (tenant id, SHA-256 of its stored override)
_T = TypeVar("_T")


async def run_guard(engine: Guard, fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)`` inline when ``engine``'s checks cost microseconds (a thread hop would cost
    more); in a worker thread when one runs a model (``Guard.offload``), so the event loop
    keeps serving."""
    if engine.offload:
        return await to_thread.run_sync(fn, *args)
    return fn(*args)


class ChatGuard:
    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self._tenants: dict[_Key, ChatGuard] = {}  # replaced whole, never mutated in place
        self._failed: dict[_Key, str] = {}  # override that did not build -> why (same rule)

    def for_tenant(self, tenant: TenantPolicy) -> ChatGuard:
        """The guard of the base policy merged with the tenant's override (this one if none)."""
        if tenant.guard_policy is None or tenant.guard_policy_sha is None:
            return self
        key = (tenant.id, tenant.guard_policy_sha)
        found = self._tenants.get(key)
        if found is None and key not in self._failed:  # a ring not prepared (tests, tools)
            log.warning("building the guard of tenant %s on the request path", tenant.id)
            built = self._try_build(tenant)
            if isinstance(built, str):
                self._failed = {**self._failed, key: built}
            else:
                found = built
                self._tenants = {**self._tenants, key: built}
        if found is None:  # fail closed: never serve a policy not asked for
            raise Unavailable(
                "this tenant's guard policy is unusable; an administrator must fix it",
                code="guard_policy_unusable",
            )
        return found

    def verdict_lookups(self) -> tuple[int, int]:
        """Verdict cache (hits, misses) of the base guard and every live tenant guard."""
        caches = [g.guard.verdicts for g in (self, *self._tenants.values())]
        live = [c for c in caches if c is not None]
        return sum(c.hits for c in live), sum(c.misses for c in live)

    def prepare(self, tenants: Iterable[TenantPolicy]) -> None:
        """Build the guard of every tenant with an override (kept when unchanged), and drop
        those of overrides no longer in use. Runs in a worker thread at each key-ring refresh;
        a tenant whose guard cannot be built is logged (once per override digest) and fails
        its requests, never falls back to a policy it did not ask for."""
        fresh: dict[_Key, ChatGuard] = {}
        failed: dict[_Key, str] = {}
        for tenant in tenants:
            if tenant.guard_policy is None or tenant.guard_policy_sha is None:
                continue
            key = (tenant.id, tenant.guard_policy_sha)
            if key in self._tenants:
                fresh[key] = self._tenants[key]
            elif key in self._failed:
                failed[key] = self._failed[key]
            else:
                built = self._try_build(tenant)
                if isinstance(built, str):
                    failed[key] = built
                else:
                    fresh[key] = built
        self._tenants, self._failed = fresh, failed

    def _try_build(self, tenant: TenantPolicy) -> ChatGuard | str:
        """The tenant's guard, or why its override does not build (logged here, once: the
        callers remember the failure per override digest)."""
        try:
            built = self._build(tenant)
        except ParamstackError as exc:
            log.error(
                "guard policy of tenant %s is unusable (refusing its requests until the "
                "override changes): %s",
                tenant.id,
                exc.message,
            )
            return exc.message
        return built

    def _build(self, tenant: TenantPolicy) -> ChatGuard:
        override = json.loads(tenant.guard_policy or "{}")
        policy = overrides.merge(self.guard.policy, override, tenant.id)
        return ChatGuard(Guard(policy, self.guard.resources))

    def guard_prompt(self, body: dict[str, Any], tenant: str = "") -> MaskSession:
        """Mask (in place) every text the caller sent; raises ``GuardBlocked`` on an attack.
        ``tenant`` scopes the remembered verdicts (a resent system prompt is not rescanned)."""
        session = MaskSession()

        def screen(text: str, data: bool = False) -> str:
            return self.guard.check_input(text, session=session, data=data, tenant=tenant).text

        for message in body.get("messages", []):
            content = message.get("content")
            data = message.get("role") in _DATA_ROLES  # tool output: judged as a document
            if isinstance(content, str):
                message["content"] = screen(content, data)
            elif isinstance(content, list):
                for part in content:
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        part["text"] = screen(part["text"], data)
        for key in ("prompt", "input"):  # completions, embeddings
            value = body.get(key)
            if isinstance(value, str):
                body[key] = screen(value)
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                body[key] = [screen(v) for v in value]
        return session

    def document_screen(
        self, session: MaskSession | None, tenant: str = ""
    ) -> Callable[[str], str]:
        """For retrieved chunks: each is judged as a document (like tool output) and its PII
        masked in the caller's session; raises ``GuardBlocked`` when one carries an injection."""
        own = session if session is not None else MaskSession()
        return lambda text: self.guard.check_input(text, session=own, data=True, tenant=tenant).text

    def guard_answer(self, body: dict[str, Any], session: MaskSession, domain: str | None) -> None:
        """Apply the output policy (in place) to every choice of a whole response."""
        for choice in body.get("choices", []):
            message = choice.get("message")
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                text = message["content"]
                message["content"] = self.guard.check_output(
                    text, session=session, domain=domain
                ).text
            elif isinstance(choice.get("text"), str):
                text = choice["text"]
                choice["text"] = self.guard.check_output(text, session=session, domain=domain).text

    def stream(self, session: MaskSession, domain: str | None) -> StreamGuard:
        return StreamGuard(self.guard, session, domain)


class StreamGuard:
    """Rewrites streamed chunks in place: each choice's text goes through its own output
    stream, which holds back a tail that could still become an identifier; the tail (and the
    disclaimer) leave with the choice's ``finish_reason`` chunk, or with :meth:`leftovers`."""

    def __init__(self, guard: Guard, session: MaskSession, domain: str | None) -> None:
        self.guard = guard
        self.session = session
        self.domain = domain
        self.open: dict[int, OutputStream] = {}
        self.done: set[int] = set()

    def _stream(self, index: int) -> OutputStream:
        if index not in self.open:
            self.open[index] = self.guard.stream_output(session=self.session, domain=self.domain)
        return self.open[index]

    def rewrite(self, body: dict[str, Any]) -> None:
        for choice in body.get("choices") or []:
            index = int(choice.get("index", 0))
            delta = choice.get("delta")
            holder, key = (delta, "content") if isinstance(delta, dict) else (choice, "text")
            text = holder.get(key)
            stream = self._stream(index)
            out = stream.feed(text) if isinstance(text, str) else ""
            if choice.get("finish_reason") is not None and index not in self.done:
                out += stream.finish()
                self.done.add(index)
            if isinstance(text, str) or out:
                holder[key] = out

    def leftovers(self) -> dict[int, str]:
        """Text still held for choices whose stream ended without a ``finish_reason``."""
        tails = {}
        for index, stream in self.open.items():
            if index not in self.done:
                self.done.add(index)
                tails[index] = stream.finish()
        return {i: t for i, t in tails.items() if t}


def build_chat_guard(settings: Settings) -> ChatGuard | None:
    """The policy file from the settings (default: the shipped default policy)."""
    if not settings.guard:
        return None
    return ChatGuard(Guard.from_file(settings.guard_policy_file, home=settings.home))
