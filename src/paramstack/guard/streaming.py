"""Guarding a streamed answer: mask PII that straddles chunk boundaries, without buffering all.

Each :meth:`OutputStream.feed` appends the chunk to a pending buffer, scans it, and releases
only a prefix that no identifier can still extend: the release point stays ``HOLD`` characters
behind the end, is moved back to the start of the whitespace-free token it would cut, and never
falls inside a finding. Identifiers with inner spaces (IBAN, cards, phones) are at most ~45
characters, so ``HOLD = 64`` keeps each one whole in the window. ``CONTEXT`` characters already
released stay in the scan window (not re-emitted) so that context rules ("doğum tarihi: …",
"cep: …") see the same words as a whole-text scan does; the streamed masking therefore equals
``Guard.check_output`` on the concatenated text. A guard with a costly check (an NER) asks
for fewer scans (``Guard.stream_step``): the stream then waits for that many more characters
before releasing, and releases them in one piece. The caller's :class:`MaskSession`
placeholders are restored on released text (the cut never splits a token, so never a
placeholder); whole-text checks (copyright) and the disclaimer run in :meth:`finish`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paramstack.guard.disclaimers import SEPARATOR, disclaimer_for
from paramstack.guard.findings import Decision, Finding
from paramstack.guard.pii import MaskSession, mask
from paramstack.guard.policy import Direction

if TYPE_CHECKING:
    from paramstack.guard.engine import Guard

HOLD = 64
CONTEXT = 48


class OutputStream:
    """Feed chunks in, get releasable text out; call :meth:`finish` once at the end."""

    def __init__(
        self, guard: Guard, *, session: MaskSession | None = None, domain: str | None = None
    ) -> None:
        self.guard = guard
        self.session = session
        self.domain = domain
        self.findings: list[Finding] = []
        self.decision = Decision.ALLOW
        self._context = ""  # already released original text, kept for context rules
        self._pending = ""
        self._raw: list[str] = []  # the original answer, for whole-text checks at the end
        self._hold = HOLD + guard.stream_step  # scan again only after this much is pending

    def feed(self, chunk: str) -> str:
        """Add a chunk; return the text that is now safe to send (may be empty).

        Raises ``GuardBlocked`` when a blocking check fires on the current window.
        """
        self._raw.append(chunk)
        self._pending += chunk
        if len(self._pending) <= self._hold:
            return ""
        return self._release(final=False)

    def finish(self) -> str:
        """Release the rest, run whole-text checks (may raise ``GuardBlocked``), add disclaimer."""
        tail = self._release(final=True) if self._pending else ""
        whole = "".join(self._raw)
        if any(c.whole_text for c in self.guard.checks.values()):
            self.guard.scan(whole, Direction.OUTPUT, scope="whole")
        if self.guard.policy.disclaimers.enabled:
            note = disclaimer_for(self.domain, whole, self.guard.policy.disclaimers.domains)
            if note is not None:
                tail += SEPARATOR + note
        return tail

    def _release(self, *, final: bool) -> str:
        pending = self._pending
        window = self._context + pending
        offset = len(self._context)
        result, spans = self.guard.scan(window, Direction.OUTPUT, scope="local")
        cut = len(pending)
        if not final:
            cut = len(pending) - HOLD
            while cut > 0 and not (pending[cut - 1].isspace() or pending[cut].isspace()):
                cut -= 1
            for span in spans:
                if span.start - offset < cut < span.end - offset:
                    cut = max(0, span.start - offset)
        if cut <= 0:
            return ""
        end = offset + cut
        local = [
            type(s)(s.start - offset, s.end - offset, s.entity, s.rule, s.score)
            for s in spans
            if s.start >= offset and s.end <= end
        ]
        self.findings.extend(f for f in result.findings if offset <= f.start < end)
        if local and result.decision is not Decision.ALLOW:
            self.decision = result.decision
        released = mask(pending[:cut], local, None)
        self._context = window[:end][-CONTEXT:]
        self._pending = pending[cut:]
        return self.session.restore(released) if self.session is not None else released
