"""What a guard check reports: findings without the matched text, and the overall result."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Decision(enum.StrEnum):
    """The strongest action taken on a text (block never returns: it raises)."""

    ALLOW = "allow"
    LOG = "log"
    WARN = "warn"
    MASK = "mask"


@dataclass(frozen=True, slots=True)
class Finding:
    """One hit: which check and rule, what kind, where, how sure.

    It holds offsets, never the matched text, so a finding can be logged or stored as is.
    """

    check: str
    entity: str
    rule: str
    start: int
    end: int
    score: float = 1.0

    def as_log(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "entity": self.entity,
            "rule": self.rule,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 4),
        }


@dataclass
class GuardResult:
    """The text to pass on (masked, disclaimer appended) and why it differs from the input."""

    text: str
    decision: Decision
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    policy_version: str = ""
    disclaimer: str | None = None

    def summary(self) -> dict[str, Any]:
        """A log-safe dict: counts per rule and the decision, no text."""
        rules: dict[str, int] = {}
        for f in self.findings:
            rules[f.rule] = rules.get(f.rule, 0) + 1
        return {
            "decision": self.decision.value,
            "policy_version": self.policy_version,
            "rules": rules,
            "warnings": list(self.warnings),
            "disclaimer": self.disclaimer is not None,
        }
