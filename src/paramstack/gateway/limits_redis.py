"""The limiter for N gateway replicas: the same GCRA and quota logic, run atomically in Redis.

Each ``admit`` is one round trip: a Lua script reads the clock with Redis's own ``TIME`` (so
replicas with skewed clocks still agree on windows and on the UTC day), checks every rate rule
and quota, and commits all or nothing. Scripts run one at a time in Redis, which is what makes
the limits exact across replicas, where per-process counters would allow N times the limit.

Reservations live in a sorted set per quota and day, scored by an expiry time: when a replica
dies between ``admit`` and ``settle``, its reservations stop holding tokens after
``reservation_ttl_s`` instead of leaking until midnight. Keys are computed in the script from
the server's day, so this targets one Redis server (or a cluster with every key hashed to one
slot by a ``{…}`` tag in ``key_prefix``).

If Redis cannot be reached the request fails closed with 503: an outage must not turn off
billing limits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from paramstack.errors import Unavailable
from paramstack.gateway.limit_types import (
    US,
    Admission,
    Outcome,
    QuotaRule,
    RateRule,
    Reservation,
    conclude,
)

QUOTA_KEY_TTL_MS = 2 * 86_400 * 1000  # a day's counters outlive it for late settles

# KEYS: rate keys, then quota keys (without the day). ARGV: n_rate, tokens, reservation id,
# ttl_us, quota key ttl_ms, then (limit, interval_us) per rate rule, then limit per quota.
ADMIT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n_rate = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local rid = ARGV[3]
local ttl = tonumber(ARGV[4])
local key_ttl = tonumber(ARGV[5])
local n_quota = #KEYS - n_rate
local new_tats = {}
local worst, worst_retry, worst_reset = 0, 0, 0
for i = 1, n_rate do
  local limit = tonumber(ARGV[4 + 2 * i])
  local interval = tonumber(ARGV[5 + 2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - interval * limit
  if allow_at > now and allow_at - now > worst_retry then
    worst, worst_retry, worst_reset = i, allow_at - now, tat - now
  end
  new_tats[i] = new_tat
end
if worst > 0 then return {1, worst, worst_retry, worst_reset} end
local day = math.floor(now / 86400000000)
local day_reset = (day + 1) * 86400000000 - now
local bases, lefts = {}, {}
for j = 1, n_quota do
  local base = KEYS[n_rate + j] .. ':' .. string.format('%d', day)
  local z = base .. ':r'
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  if #expired > 0 then
    local freed = 0
    for _, m in ipairs(expired) do freed = freed + tonumber(string.match(m, ':(%d+)$')) end
    redis.call('HINCRBY', base, 'reserved', -freed)
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
  end
  local used = tonumber(redis.call('HGET', base, 'used') or '0')
  local reserved = tonumber(redis.call('HGET', base, 'reserved') or '0')
  local limit = tonumber(ARGV[5 + 2 * n_rate + j])
  if used + reserved + tokens > limit then return {2, j, used, reserved, day_reset} end
  bases[j] = base
  lefts[j] = limit - used - reserved - tokens
end
local out = {0, day, day_reset}
for i = 1, n_rate do
  local interval = tonumber(ARGV[5 + 2 * i])
  local limit = tonumber(ARGV[4 + 2 * i])
  local ahead = new_tats[i] - now
  redis.call('SET', KEYS[i], string.format('%d', new_tats[i]), 'PX', math.ceil(ahead / 1000) + 1000)
  out[#out + 1] = math.floor((interval * limit - ahead) / interval)
  out[#out + 1] = ahead
end
for j = 1, n_quota do
  redis.call('HINCRBY', bases[j], 'reserved', tokens)
  redis.call('ZADD', bases[j] .. ':r', now + ttl, rid .. ':' .. tokens)
  redis.call('PEXPIRE', bases[j], key_ttl)
  redis.call('PEXPIRE', bases[j] .. ':r', key_ttl)
  out[#out + 1] = lefts[j]
end
return out
"""

# KEYS: quota keys with their day. ARGV: reservation member, reserved tokens, used tokens, ttl.
SETTLE_LUA = """
for i = 1, #KEYS do
  local base = KEYS[i]
  if redis.call('ZREM', base .. ':r', ARGV[1]) == 1 then
    redis.call('HINCRBY', base, 'reserved', -tonumber(ARGV[2]))
  end
  redis.call('HINCRBY', base, 'used', ARGV[3])
  redis.call('PEXPIRE', base, tonumber(ARGV[4]))
end
return 1
"""


def _outcome(raw: Sequence[Any], n_rate: int) -> Outcome:
    values = [int(v) for v in raw]
    status = values[0]
    if status == 1:
        return Outcome.rate_denied(values[1], values[2], values[3])
    if status == 2:
        return Outcome.quota_denied(values[1], values[2], values[3], values[4])
    day, day_reset = values[1], values[2]
    pairs = values[3 : 3 + 2 * n_rate]
    states = [(pairs[k], pairs[k + 1]) for k in range(0, len(pairs), 2)]
    return Outcome.admitted(states, values[3 + 2 * n_rate :], day, day_reset)


class RedisLimiter:
    """Exact limits shared by every process that uses the same Redis and ``key_prefix``."""

    def __init__(
        self, client: Redis, *, key_prefix: str = "paramstack:", reservation_ttl_s: float = 900
    ) -> None:
        self._client = client
        self._prefix = key_prefix
        self._ttl_us = int(reservation_ttl_s * US)
        self._admit = client.register_script(ADMIT_LUA)
        self._settle = client.register_script(SETTLE_LUA)

    @classmethod
    def from_url(
        cls, url: str, *, key_prefix: str = "paramstack:", reservation_ttl_s: float = 900
    ) -> RedisLimiter:
        client = Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        return cls(client, key_prefix=key_prefix, reservation_ttl_s=reservation_ttl_s)

    async def admit(
        self, rates: Sequence[RateRule], quotas: Sequence[QuotaRule] = (), tokens: int = 0
    ) -> Admission:
        if tokens < 0:
            raise ValueError("tokens must be >= 0")
        rid = uuid.uuid4().hex if quotas else ""
        keys = [self._prefix + r.key for r in rates] + [self._prefix + q.key for q in quotas]
        args: list[int | str] = [len(rates), tokens, rid, self._ttl_us, QUOTA_KEY_TTL_MS]
        for rule in rates:
            args += [rule.limit, rule.interval_us]
        args += [q.limit for q in quotas]
        try:
            raw = await self._admit(keys=keys, args=args)
        except RedisError as exc:
            raise Unavailable(
                f"the rate limiter is unavailable ({type(exc).__name__})", code="limiter_down"
            ) from exc
        return conclude(_outcome(raw, len(rates)), rates, quotas, tokens, rid)

    async def settle(self, reservation: Reservation, used_tokens: int) -> None:
        reservation.mark_settled()
        keys = [f"{self._prefix}{key}:{reservation.day}" for key in reservation.keys]
        member = f"{reservation.id}:{reservation.tokens}"
        args: list[int | str] = [member, reservation.tokens, max(used_tokens, 0), QUOTA_KEY_TTL_MS]
        try:
            await self._settle(keys=keys, args=args)
        except RedisError as exc:
            reservation.settled = False  # nothing was written: the caller may settle again
            raise Unavailable(
                f"the rate limiter is unavailable ({type(exc).__name__})", code="limiter_down"
            ) from exc

    async def aclose(self) -> None:
        await self._client.aclose()
