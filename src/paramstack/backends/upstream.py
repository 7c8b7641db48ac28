"""What every HTTP upstream shares: one connection pool, retries with backoff, a breaker.

Failure policy, chosen so a flaky upstream costs callers little and is not hammered:
- connect errors, 5xx, 429 and 529 (Anthropic's "overloaded") are retried ``max_retries``
  times with exponential backoff (``backoff_s * 2**attempt``); nothing was generated, so a
  retry cannot double-bill;
- a read timeout is not retried: the upstream may still be generating (and billing) that call;
- after the retries a call fails with 502 (``UpstreamError``); an upstream 4xx is the caller's
  mistake and becomes 400 without a retry, except 401/403, which mean the gateway's own
  upstream key is wrong (502 ``upstream_auth``: the operator's problem, not the caller's);
- ``breaker_failures`` failed calls in a row open a circuit breaker (503 at once, see
  ``circuit``), and an upstream answering 4xx counts as alive.
The wire formats (OpenAI, Anthropic) live in the subclasses; this class only moves bytes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from paramstack.backends.circuit import CircuitBreaker
from paramstack.backends.http11 import (
    ConnectFailed,
    Http11Client,
    ProtocolError,
    ReadTimeout,
    Response,
)
from paramstack.backends.protocol import BackendConfig
from paramstack.errors import InvalidInput, UpstreamError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 529})
AUTH_STATUSES = frozenset({401, 403})


class UpstreamRejected(InvalidInput):
    default_code = "upstream_rejected"


def error_code(content: bytes) -> str:
    """The upstream's error code or type only (its message may quote the prompt). OpenAI puts
    it in ``error.code`` or ``error.type``, Anthropic in ``error.type``."""
    try:
        error = orjson.loads(content).get("error")
        code = error.get("code") or error.get("type") if isinstance(error, dict) else None
    except (orjson.JSONDecodeError, AttributeError):
        code = None
    return str(code)[:64] if code else "none"


def encode(body: dict[str, Any]) -> bytes:
    """orjson, or the standard library for what orjson refuses and JSON allows (integers
    beyond 64 bits, lone surrogates escaped), so a pass-through field is forwarded as sent."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body, separators=(",", ":")).encode()


class HttpUpstream:
    """Base of the HTTP backends: ``_open`` / ``_send`` apply the failure policy above."""

    def __init__(self, config: BackendConfig, headers: Mapping[str, str]) -> None:
        if not config.base_url:
            raise InvalidInput(f"a {config.kind} backend needs base_url", param="base_url")
        self.config = config
        try:
            self._client = Http11Client(
                config.base_url,
                headers,
                timeout_s=config.timeout_s,
                connect_timeout_s=config.connect_timeout_s,
            )
        except ValueError as exc:
            raise InvalidInput(str(exc), param="base_url") from exc
        self.breaker = CircuitBreaker(
            config.base_url, config.breaker_failures, config.breaker_reset_s
        )
        self.on_retry: Callable[[str], None] | None = None  # see ``protocol.Observable``

    def __repr__(self) -> str:  # the api key never shows up in a log line
        return f"{type(self).__name__}({self.config.base_url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _send(self, path: str, body: dict[str, Any]) -> bytes:
        """The body of a 200 answer, after retries and under the breaker."""
        response = await self._open(path, body)
        try:
            return await response.read()
        except (ReadTimeout, ProtocolError) as exc:
            self.breaker.record_failure()
            raise UpstreamError(f"the upstream response broke: {type(exc).__name__}") from exc

    async def _open(self, path: str, body: dict[str, Any]) -> Response:
        """POST with retries and the breaker; returns a 200 response with its body unread."""
        self.breaker.before_call()
        content = encode(body)
        reason = "no attempt"
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                if self.on_retry is not None:
                    self.on_retry(str(body.get("model")))
                await asyncio.sleep(self.config.backoff_s * 2 ** (attempt - 1))
            try:
                response = await self._client.post(path, content)
            except ConnectFailed as exc:
                reason = str(exc)
                continue
            except (ReadTimeout, ProtocolError) as exc:
                self.breaker.record_failure()
                code = "upstream_timeout" if isinstance(exc, ReadTimeout) else "upstream_error"
                raise UpstreamError(f"the upstream failed: {exc}", code=code) from exc
            if response.status == 200:
                self.breaker.record_success()
                return response
            try:
                error_body = await response.read()
            except (ReadTimeout, ProtocolError):
                error_body = b""
            if response.status in RETRY_STATUSES:
                reason = f"HTTP {response.status}"
                continue
            self.breaker.record_success()  # it answered: alive, the request was at fault
            detail = f"HTTP {response.status}, code {error_code(error_body)}"
            if response.status in AUTH_STATUSES:
                raise UpstreamError(
                    f"the upstream refused the gateway's credentials ({detail})",
                    code="upstream_auth",
                )
            raise UpstreamRejected(f"the upstream refused the request ({detail})")
        self.breaker.record_failure()
        raise UpstreamError(
            f"the upstream failed after {self.config.max_retries + 1} attempts ({reason})",
            code="upstream_unavailable",
        )
