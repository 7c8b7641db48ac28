"""Any OpenAI-compatible server as a backend (vLLM, Ollama, a provider), over HTTP/1.1.

Retries, backoff, timeouts and the circuit breaker are ``upstream.HttpUpstream``'s (shared
with the Anthropic backend); streams are retried only until the upstream answers 200, after
that a broken stream ends the response. The HTTP client is ``http11`` (not httpx: see there,
it is about CPU per request). Token counts are the upstream's ``usage`` field; for streams
the backend always asks for ``stream_options.include_usage`` so it can settle quotas, and the
gateway hides that final chunk from clients that did not ask for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from paramstack.backends.http11 import ProtocolError, ReadTimeout
from paramstack.backends.protocol import (
    BackendConfig,
    ChatChunk,
    ChatResult,
    Usage,
    backend,
)
from paramstack.backends.upstream import HttpUpstream
from paramstack.errors import UpstreamError


@backend("openai-compatible")
class OpenAIUpstream(HttpUpstream):
    kind = "openai-compatible"
    capabilities = frozenset({"chat", "completions", "embeddings"})

    def __init__(self, config: BackendConfig) -> None:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if config.api_key is not None:
            headers["authorization"] = f"Bearer {config.api_key.get_secret_value()}"
        super().__init__(config, headers)

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
