"""``Guard(policy)``: run the policy's checks on a prompt or an answer and apply the actions.

The contract for callers (the gateway, scripts):

* ``check_input(text, session=None)`` → :class:`GuardResult` with the text to send to the model;
* ``check_output(text, session=None, domain=None)`` → the text to return to the caller
  (PII masked, the caller's own placeholders restored, a domain disclaimer appended);
* ``stream_output(...)`` → an :class:`~paramstack.guard.streaming.OutputStream` for SSE;
* a ``block`` action raises :class:`~paramstack.errors.GuardBlocked` naming the rule.

All checks scan the *original* text (an injection must not hide behind a mask), then blocks are
decided, then mask spans of every masking check are merged and applied in one pass.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from paramstack.errors import GuardBlocked, InvalidInput
from paramstack.guard.checks import Check, DocumentView, GuardResources, TextView, get_check
from paramstack.guard.disclaimers import append_disclaimer, disclaimer_for
from paramstack.guard.findings import Decision, Finding, GuardResult
from paramstack.guard.pii import MaskSession, mask, resolve_overlaps
from paramstack.guard.pii_patterns import Span
from paramstack.guard.policy import Action, Direction, Policy
from paramstack.guard.verdict_cache import Verdict, VerdictCache

if TYPE_CHECKING:
    from paramstack.guard.streaming import OutputStream

Scope = Literal["all", "local", "whole"]
log = logging.getLogger(__name__)
_ORDER = ("injection", "copyright", "toxicity", "pii")  # which block is reported first
_RANK = {Decision.ALLOW: 0, Decision.LOG: 1, Decision.WARN: 2, Decision.MASK: 3}
_DECISION = {Action.LOG: Decision.LOG, Action.WARN: Decision.WARN, Action.MASK: Decision.MASK}


class Guard:
    """Built once per policy (loads models and corpora); thread-safe to call afterwards."""

    def __init__(
        self, policy: Policy | None = None, resources: GuardResources | None = None
    ) -> None:
        self.policy = policy or Policy.from_yaml()
        self.resources = resources or GuardResources()
        self.checks: dict[str, Check] = {}
        for name in _ORDER:
            cfg = getattr(self.policy, name)
            if cfg.input is Action.OFF and cfg.output is Action.OFF:
                continue
            built = get_check(name)(self.policy, self.resources)
            for action in (cfg.input, cfg.output):
                if action not in built.allowed:
                    raise InvalidInput(
                        f"policy {self.policy.version!r}: action {action.value!r} is not "
                        f"valid for {name}; valid: {sorted(a.value for a in built.allowed)}",
                        code="bad_policy",
                    )
            self.checks[name] = built
        # New characters a stream (an answer) collects before it is scanned again (streaming.py).
        self.stream_step: int = max(
            (
                getattr(c, "stream_step", 0)
                for name, c in self.checks.items()
                if getattr(self.policy, name).output is not Action.OFF
            ),
            default=0,
        )
        # A check costing milliseconds (an NER model) asks callers on an event loop to run the
        # guard in a worker thread; the default checks cost microseconds and run inline.
        self.offload: bool = any(getattr(c, "offload", False) for c in self.checks.values())
        entries = self.policy.verdict_cache
        self.verdicts: VerdictCache | None = VerdictCache(entries) if entries else None

    @classmethod
    def from_file(cls, path: Path | None = None, home: Path = Path("var")) -> Guard:
        return cls(Policy.from_yaml(path), GuardResources(home=home))

    @property
    def version(self) -> str:
        return self.policy.version

    def check_input(
        self,
        text: str,
        *,
        session: MaskSession | None = None,
        data: bool = False,
        tenant: str = "",
    ) -> GuardResult:
        """Scan a prompt; returns the text to forward (masked) or raises ``GuardBlocked``.
        ``data``: a document (tool output, retrieved context) rather than the caller's words.
        ``tenant``: the scope of remembered verdicts (a text resent in it is not scanned again)."""
        if self.verdicts is None:
            return self.run(text, Direction.INPUT, session=session, data=data)
        result, spans = self._remembered(self.verdicts, text, data, tenant)
        if spans:
            result.text = mask(text, spans, session)
        return result

    def _remembered(
        self, cache: VerdictCache, text: str, data: bool, tenant: str
    ) -> tuple[GuardResult, list[Span]]:
        """:meth:`scan` of a prompt through the verdict cache: the same result, block included."""
        key = cache.key(text, tenant, data)
        verdict = cache.get(key)
        if verdict is None:
            try:
                result, spans = self.scan(text, Direction.INPUT, data=data)
            except GuardBlocked as exc:
                cache.put(key, Verdict.of_block(exc))
                raise
            found = (tuple(result.findings), tuple(result.warnings), tuple(spans))
            cache.put(key, Verdict(result.decision, *found))
            return result, spans
        if verdict.blocked is not None:
            check, rule = verdict.blocked
            log.info("guard block %s on %s (remembered)", rule, Direction.INPUT.value)
            raise GuardBlocked(
                check=check, rule=rule, direction="input", policy_version=self.policy.version
            )
        findings, warnings = list(verdict.findings), list(verdict.warnings)
        result = GuardResult(text, verdict.decision, findings, warnings, self.policy.version)
        return result, list(verdict.spans)

    def check_output(
        self, text: str, *, session: MaskSession | None = None, domain: str | None = None
    ) -> GuardResult:
        """Scan an answer; masks new PII, restores the session's placeholders, adds disclaimers."""
        result = self.run(text, Direction.OUTPUT, session=None)
        if session is not None:
            result.text = session.restore(result.text)
        self.add_disclaimer(result, domain)
        return result

    def add_disclaimer(self, result: GuardResult, domain: str | None) -> None:
        if not self.policy.disclaimers.enabled:
            return
        note = disclaimer_for(domain, result.text, self.policy.disclaimers.domains)
        if note is not None:
            result.text = append_disclaimer(result.text, note)
            result.disclaimer = note

    def stream_output(
        self, *, session: MaskSession | None = None, domain: str | None = None
    ) -> OutputStream:
        from paramstack.guard.streaming import OutputStream

        return OutputStream(self, session=session, domain=domain)

    def run(
        self,
        text: str,
        direction: Direction,
        *,
        session: MaskSession | None = None,
        scope: Scope = "all",
        data: bool = False,
    ) -> GuardResult:
        """Scan ``text`` with every check active on ``direction`` and apply the actions."""
        result, spans = self.scan(text, direction, scope=scope, data=data)
        if spans:
            result.text = mask(text, spans, session)
        return result

    def scan(
        self, text: str, direction: Direction, *, scope: Scope = "all", data: bool = False
    ) -> tuple[GuardResult, list[Span]]:
        """Findings and the non-overlapping spans to mask; raises ``GuardBlocked`` on a block.

        ``scope`` picks the checks: ``local`` ones work on any window of a text (streaming),
        ``whole`` ones need the complete text (copyright).
        """
        view = DocumentView(text) if data else TextView(text)
        findings: list[Finding] = []
        decision = Decision.ALLOW
        warnings: list[str] = []
        mask_spans: list[Span] = []
        for name, chk in self.checks.items():
            action = getattr(self.policy, name).action(direction)
            if (
                action is Action.OFF
                or (scope == "local" and chk.whole_text)
                or (scope == "whole" and not chk.whole_text)
            ):
                continue
            hits = chk.scan(view)
            if not hits:
                continue
            findings.extend(hits)
            if action is Action.BLOCK:
                log.info("guard block %s on %s", hits[0].rule, direction.value)
                raise GuardBlocked(
                    check=name,
                    rule=hits[0].rule,
                    direction=direction.value,
                    policy_version=self.policy.version,
                )
            if action is Action.WARN:
                warnings.extend(sorted({h.rule for h in hits}))
            if action is Action.MASK:
                mask_spans.extend(Span(h.start, h.end, h.entity, h.rule) for h in hits)
            if _RANK[_DECISION[action]] > _RANK[decision]:
                decision = _DECISION[action]
        result = GuardResult(text, decision, findings, warnings, self.policy.version)
        return result, resolve_overlaps(mask_spans) if mask_spans else []
