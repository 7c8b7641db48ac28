"""The guard policy on the OpenAI routes: prompts are scanned before the upstream sees them
(PII masked, attacks blocked), answers before the caller does (new PII masked, the caller's own
placeholders restored, the tenant domain's disclaimer appended) — streamed answers included,
through one :class:`~paramstack.guard.streaming.OutputStream` per choice."""

from __future__ import annotations

from typing import Any

from paramstack.config import Settings
from paramstack.guard.engine import Guard
from paramstack.guard.pii import MaskSession
from paramstack.guard.streaming import OutputStream


class ChatGuard:
    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def _input(self, text: str, session: MaskSession) -> str:
        return self.guard.check_input(text, session=session).text

    def guard_prompt(self, body: dict[str, Any]) -> MaskSession:
        """Mask (in place) every text the caller sent; raises ``GuardBlocked`` on an attack."""
        session = MaskSession()
        for message in body.get("messages", []):
            content = message.get("content")
            if isinstance(content, str):
                message["content"] = self._input(content, session)
            elif isinstance(content, list):
                for part in content:
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        part["text"] = self._input(part["text"], session)
        for key in ("prompt", "input"):  # completions, embeddings
            value = body.get(key)
            if isinstance(value, str):
                body[key] = self._input(value, session)
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                body[key] = [self._input(v, session) for v in value]
        return session

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
