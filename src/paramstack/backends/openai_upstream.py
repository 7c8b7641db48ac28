"""Any OpenAI-compatible server as a backend (vLLM, Ollama, a provider), over HTTP/1.1.

Failure policy, chosen so a flaky upstream costs callers little and is not hammered:
- connect errors, 5xx and 429 are retried ``max_retries`` times with exponential backoff
  (``backoff_s * 2**attempt``); nothing was generated, so a retry cannot double-bill;
- a read timeout is not retried: the upstream may still be generating (and billing) that call;
- after the retries a call fails with 502 (``UpstreamError``); an upstream 4xx is the caller's
  mistake and becomes 400 without a retry;
- ``breaker_failures`` failed calls in a row open a circuit breaker (503 at once, see
  ``circuit``), and an upstream answering 4xx counts as alive.
Streams are retried only until the upstream answers 200; after that a broken stream ends the
response. The HTTP client is ``http11`` (not httpx: see there, it is about CPU per request).
Token counts are the upstream's ``usage`` field; for streams the backend always asks
for ``stream_options.include_usage`` so it can settle quotas, and the gateway hides that final
chunk from clients that did not ask for it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
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
from paramstack.backends.protocol import (
    BackendConfig,
    ChatChunk,
    ChatResult,
    Usage,
    backend,
)
from paramstack.errors import InvalidInput, UpstreamError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class UpstreamRejected(InvalidInput):
    default_code = "upstream_rejected"


def _error_code(content: bytes) -> str:
    """The upstream's error code only (its message may quote the prompt)."""
    try:
        error = orjson.loads(content).get("error")
        code = error.get("code") or error.get("type") if isinstance(error, dict) else None
    except (orjson.JSONDecodeError, AttributeError):
        code = None
    return str(code)[:64] if code else "none"


def _encode(body: dict[str, Any]) -> bytes:
    """orjson, or the standard library for what orjson refuses and JSON allows (integers
    beyond 64 bits, lone surrogates escaped), so a pass-through field is forwarded as sent."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body, separators=(",", ":")).encode()


@backend("openai-compatible")
class OpenAIUpstream:
    kind = "openai-compatible"
    capabilities = frozenset({"chat", "completions", "embeddings"})

    def __init__(self, config: BackendConfig) -> None:
        if not config.base_url:
            raise InvalidInput("an openai-compatible backend needs base_url", param="base_url")
        self.config = config
        headers = {"content-type": "application/json", "accept": "application/json"}
        if config.api_key is not None:
            headers["authorization"] = f"Bearer {config.api_key.get_secret_value()}"
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
        return f"OpenAIUpstream({self.config.base_url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def chat(self, request: dict[str, Any]) -> ChatResult:
        return await self._call("chat/completions", request)

    async def completions(self, request: dict[str, Any]) -> ChatResult:
        return await self._call("completions", request)

    async def embeddings(self, request: dict[str, Any]) -> ChatResult:
        return await self._call("embeddings", request)

    def stream_chat(self, request: dict[str, Any]) -> AsyncIterator[ChatChunk]:
        return self._stream("chat/completions", request)

    def stream_completions(self, request: dict[str, Any]) -> AsyncIterator[ChatChunk]:
        return self._stream("completions", request)

    async def _call(self, path: str, body: dict[str, Any]) -> ChatResult:
        content = await self._send(path, body)
        try:
            parsed = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError("the upstream answered with invalid JSON") from exc
        usage = Usage.from_openai(parsed.get("usage") if isinstance(parsed, dict) else None)
        if usage is None:
            raise UpstreamError("the upstream response has no usage field", code="upstream_usage")
        return ChatResult(parsed, usage)

    async def _stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[ChatChunk]:
        body = {**body, "stream": True}
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        response = await self._open(path, body)
        try:
            async for line in response.iter_lines():
                if not line.startswith(b"data:"):
                    continue  # blank separators, comments, event names
                data = line[5:].strip()
                if data == b"[DONE]":
                    return
                try:
                    chunk = orjson.loads(data)
                except orjson.JSONDecodeError as exc:
                    raise UpstreamError("the upstream sent an invalid stream chunk") from exc
                yield ChatChunk(chunk, Usage.from_openai(chunk.get("usage")))
        except (ReadTimeout, ProtocolError) as exc:
            raise UpstreamError(f"the upstream stream broke: {type(exc).__name__}") from exc
        finally:
            response.close()

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
        content = _encode(body)
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
            raise UpstreamRejected(
                f"the upstream refused the request (HTTP {response.status}, "
                f"code {_error_code(error_body)})"
            )
        self.breaker.record_failure()
        raise UpstreamError(
            f"the upstream failed after {self.config.max_retries + 1} attempts ({reason})",
            code="upstream_unavailable",
        )
