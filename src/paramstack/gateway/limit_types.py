"""The limiter's vocabulary: rules, the raw outcome both backends produce, and what callers get.

Both backends (in-process and Redis) return an ``Outcome`` of plain integers, and ``conclude``
turns it into an ``Admission`` or a 429 error with its headers, so the two cannot drift apart
in what they tell clients. Times are integer microseconds: Redis's Lua has only doubles, and
integers below 2**53 survive that round trip exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from paramstack.errors import LimitExceeded

if TYPE_CHECKING:
    from paramstack.registry.key_ring import Principal

US = 1_000_000
DAY_US = 86_400 * US


@dataclass(frozen=True, slots=True)
class RateRule:
    """At most ``limit`` requests per ``period_s`` for ``key``; ``label`` names it in errors."""

    key: str
    limit: int
    period_s: int
    label: str

    def __post_init__(self) -> None:
        if self.limit < 1 or self.period_s < 1:
            raise ValueError("a rate rule needs limit >= 1 and period_s >= 1")

    @property
    def interval_us(self) -> int:
        return -(-self.period_s * US // self.limit)  # ceil: never faster than the limit

    def remaining_after(self, ahead_us: int) -> int:
        """Requests still admissible right now when ``tat`` is ``ahead_us`` past now."""
        interval = self.interval_us
        return max(0, (interval * self.limit - ahead_us) // interval)


@dataclass(frozen=True, slots=True)
class QuotaRule:
    """At most ``limit`` tokens per UTC day for ``key``."""

    key: str
    limit: int
    label: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a backend decided, as integers; ``status`` 0 admitted, 1 rate, 2 quota refused."""

    status: int
    index: int = 0  # 1-based index of the refusing rule
    retry_us: int = 0
    reset_us: int = 0
    used: int = 0
    reserved: int = 0
    rate_states: tuple[tuple[int, int], ...] = ()  # (remaining, reset_us) per rate rule
    quota_left: tuple[int, ...] = ()
    day: int = 0

    @classmethod
    def rate_denied(cls, index: int, retry_us: int, reset_us: int) -> Outcome:
        return cls(1, index=index, retry_us=retry_us, reset_us=reset_us)

    @classmethod
    def quota_denied(cls, index: int, used: int, reserved: int, day_reset_us: int) -> Outcome:
        return cls(2, index=index, used=used, reserved=reserved, reset_us=day_reset_us)

    @classmethod
    def admitted(
        cls,
        states: Sequence[tuple[int, int]],
        quota_left: Sequence[int],
        day: int,
        day_reset_us: int,
    ) -> Outcome:
        return cls(
            0,
            rate_states=tuple(states),
            quota_left=tuple(quota_left),
            day=day,
            reset_us=day_reset_us,
        )


@dataclass(slots=True)
class Reservation:
    """Tokens held against the quotas ``keys`` on UTC ``day``; settle it exactly once."""

    id: str
    tokens: int
    day: int
    keys: tuple[str, ...]
    settled: bool = field(default=False)

    def mark_settled(self) -> None:
        if self.settled:
            raise ValueError(f"reservation {self.id} was already settled")
        self.settled = True


def _seconds(us: int) -> int:
    return max(1, -(-us // US))


def _duration(us: int) -> str:
    """OpenAI's reset format: ``250ms``, ``7s``, ``6m0s``, ``1h2m3s``."""
    if us < US:
        return f"{max(1, -(-us // 1000))}ms"
    hours, rest = divmod(-(-us // US), 3600)
    minutes, seconds = divmod(rest, 60)
    return (
        (f"{hours}h" if hours else "")
        + (f"{minutes}m" if hours or minutes else "")
        + (f"{seconds}s")
    )


@dataclass(frozen=True, slots=True)
class Admission:
    """An admitted request: header values for the tightest rules, and its reservation."""

    request_limit: int | None = None
    request_remaining: int = 0
    request_reset_us: int = 0
    token_limit: int | None = None
    token_remaining: int = 0
    token_reset_us: int = 0
    reservation: Reservation | None = None

    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.request_limit is not None:
            out["x-ratelimit-limit"] = str(self.request_limit)
            out["x-ratelimit-remaining"] = str(self.request_remaining)
            out["x-ratelimit-reset"] = str(_seconds(self.request_reset_us))
            out["x-ratelimit-limit-requests"] = str(self.request_limit)
            out["x-ratelimit-remaining-requests"] = str(self.request_remaining)
            out["x-ratelimit-reset-requests"] = _duration(self.request_reset_us)
        if self.token_limit is not None:
            out["x-ratelimit-limit-tokens"] = str(self.token_limit)
            out["x-ratelimit-remaining-tokens"] = str(self.token_remaining)
            out["x-ratelimit-reset-tokens"] = _duration(self.token_reset_us)
        return out


class RateLimited(LimitExceeded):
    """HTTP 429 with ``Retry-After`` (whole seconds), ``retry-after-ms`` (read by the OpenAI
    SDKs) and the ``x-ratelimit-*`` values of the rule that refused."""

    default_code = "rate_limit_exceeded"

    def __init__(self, rule: RateRule, retry_us: int, reset_us: int) -> None:
        super().__init__(
            f"Rate limit reached for {rule.label} (limit {rule.limit} per {rule.period_s} s); "
            f"retry after {_seconds(retry_us)} s."
        )
        self.retry_after_s = retry_us / US
        self.headers = {
            "retry-after": str(_seconds(retry_us)),
            "retry-after-ms": str(max(1, -(-retry_us // 1000))),
            "x-ratelimit-limit": str(rule.limit),
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": str(_seconds(reset_us)),
            "x-ratelimit-limit-requests": str(rule.limit),
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": _duration(reset_us),
        }


class QuotaExceeded(LimitExceeded):
    """HTTP 429, code ``insufficient_quota`` like OpenAI's. When settled usage alone fills the
    quota, retry at the next UTC day; when in-flight reservations do, retry in a second."""

    default_code = "insufficient_quota"

    def __init__(self, rule: QuotaRule, tokens: int, used: int, reserved: int, day_us: int):
        exhausted = used + tokens > rule.limit
        retry_us = day_us if exhausted else US
        super().__init__(
            f"Daily token quota reached for {rule.label} (limit {rule.limit} tokens per UTC day); "
            f"this request may use up to {tokens}."
        )
        self.retry_after_s = retry_us / US
        left = max(0, rule.limit - used - reserved)
        self.headers = {
            "retry-after": str(_seconds(retry_us)),
            "retry-after-ms": str(max(1, -(-retry_us // 1000))),
            "x-ratelimit-limit-tokens": str(rule.limit),
            "x-ratelimit-remaining-tokens": str(left),
            "x-ratelimit-reset-tokens": _duration(day_us),
        }


def conclude(
    outcome: Outcome,
    rates: Sequence[RateRule],
    quotas: Sequence[QuotaRule],
    tokens: int,
    reservation_id: str,
) -> Admission:
    """The ``Admission`` for an admitted outcome; raises the 429 error for a refused one."""
    if outcome.status == 1:
        raise RateLimited(rates[outcome.index - 1], outcome.retry_us, outcome.reset_us)
    if outcome.status == 2:
        rule = quotas[outcome.index - 1]
        raise QuotaExceeded(rule, tokens, outcome.used, outcome.reserved, outcome.reset_us)
    admission = Admission()
    if rates:
        # The binding rule: fewest requests left, then the longest wait to refill.
        i = min(
            range(len(rates)), key=lambda k: (outcome.rate_states[k][0], -outcome.rate_states[k][1])
        )
        remaining, reset_us = outcome.rate_states[i]
        admission = Admission(rates[i].limit, remaining, reset_us)
    if quotas:
        j = min(range(len(quotas)), key=lambda k: outcome.quota_left[k])
        admission = Admission(
            admission.request_limit,
            admission.request_remaining,
            admission.request_reset_us,
            token_limit=quotas[j].limit,
            token_remaining=outcome.quota_left[j],
            token_reset_us=outcome.reset_us,
            reservation=Reservation(
                reservation_id, tokens, outcome.day, tuple(q.key for q in quotas)
            ),
        )
    return admission


class _Limits(Protocol):
    @property
    def requests_per_second(self) -> int | None: ...
    @property
    def requests_per_minute(self) -> int | None: ...
    @property
    def tokens_per_day(self) -> int | None: ...


Rules = tuple[tuple[RateRule, ...], tuple[QuotaRule, ...]]
# Built once per principal: a key ring snapshot holds one immutable ``Principal`` per key, so
# its rules never change; keyed by identity (the entry keeps the principal alive, so its id is
# not reused) and emptied when large (old snapshots' principals then go away).
_RULES: dict[int, tuple[Principal, Rules]] = {}
_RULES_MAX = 4096


def rules_for(principal: Principal) -> Rules:
    """The tenant's and the key's rules for one request: both apply, so a key's limits can
    only tighten its tenant's, and the tenant's hold across all of its keys together."""
    hit = _RULES.get(id(principal))
    if hit is not None and hit[0] is principal:
        return hit[1]
    rules = _build_rules(principal)
    if len(_RULES) >= _RULES_MAX:
        _RULES.clear()
    _RULES[id(principal)] = (principal, rules)
    return rules


def _build_rules(principal: Principal) -> Rules:
    tenant = principal.tenant
    rates: list[RateRule] = []
    quotas: list[QuotaRule] = []
    owners: list[tuple[str, str, _Limits]] = [
        ("tenant", f"t:{tenant.id}", tenant),
        ("API key", f"k:{principal.key_id}", principal),
    ]
    for scope, key, owner in owners:
        if owner.requests_per_second:
            rates.append(
                RateRule(f"{key}:rps", owner.requests_per_second, 1, f"{scope} requests per second")
            )
        if owner.requests_per_minute:
            rates.append(
                RateRule(
                    f"{key}:rpm", owner.requests_per_minute, 60, f"{scope} requests per minute"
                )
            )
        if owner.tokens_per_day:
            quotas.append(QuotaRule(f"{key}:tpd", owner.tokens_per_day, f"{scope} tokens per day"))
    return tuple(rates), tuple(quotas)
