"""Anthropic's Messages API as a chat backend (``backend: anthropic`` in the models YAML).

The wire translation is ``anthropic_wire``; retries with backoff, timeouts and the circuit
breaker are ``upstream.HttpUpstream``'s, the same policy as the OpenAI-compatible backend
(Anthropic's 529 "overloaded" is retried like a 503). ``base_url`` is the API's ``/v1`` URL,
e.g. ``https://api.anthropic.com/v1``; the key goes in ``x-api-key`` (from ``api_key_env``).
Only chat: Anthropic has no text-completion or embedding endpoint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from paramstack.backends.anthropic_wire import (
    ANTHROPIC_VERSION,
    StreamTranslator,
    from_message,
    to_messages_request,
)
from paramstack.backends.http11 import ProtocolError, ReadTimeout
from paramstack.backends.protocol import BackendConfig, ChatChunk, ChatResult, backend
from paramstack.backends.upstream import HttpUpstream
from paramstack.errors import InvalidInput, UpstreamError


@backend("anthropic")
class AnthropicUpstream(HttpUpstream):
    kind = "anthropic"
    capabilities = frozenset({"chat"})

    def __init__(self, config: BackendConfig) -> None:
        headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "anthropic-version": ANTHROPIC_VERSION,
        }
        if config.api_key is not None:
            headers["x-api-key"] = config.api_key.get_secret_value()
        super().__init__(config, headers)

    async def chat(self, request: dict[str, Any]) -> ChatResult:
        content = await self._send("messages", to_messages_request(request))
        try:
            message = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError("the upstream answered with invalid JSON") from exc
        body, usage = from_message(message)
        return ChatResult(body, usage)

    def stream_chat(self, request: dict[str, Any]) -> AsyncIterator[ChatChunk]:
        return self._stream(request)

    async def _stream(self, request: dict[str, Any]) -> AsyncIterator[ChatChunk]:
        # translated inside the generator: a refused request fails at the first chunk, where
        # the gateway settles its reservation
        body = {**to_messages_request(request), "stream": True}
        response = await self._open("messages", body)
        translator = StreamTranslator()
        try:
            async for line in response.iter_lines():
                if not line.startswith(b"data:"):
                    continue  # "event:" lines repeat the data's "type"; blank separators
                try:
                    event = orjson.loads(line[5:].strip())
                except orjson.JSONDecodeError as exc:
                    raise UpstreamError("the upstream sent an invalid stream event") from exc
                for chunk in translator.feed(event if isinstance(event, dict) else {}):
                    yield chunk
                if translator.done:
                    return
        except (ReadTimeout, ProtocolError) as exc:
            raise UpstreamError(f"the upstream stream broke: {type(exc).__name__}") from exc
        finally:
            response.close()

    async def completions(self, request: dict[str, Any]) -> ChatResult:
        raise InvalidInput("this model supports chat only", code="unsupported_model")

    def stream_completions(self, request: dict[str, Any]) -> AsyncIterator[ChatChunk]:
        raise InvalidInput("this model supports chat only", code="unsupported_model")

    async def embeddings(self, request: dict[str, Any]) -> ChatResult:
        raise InvalidInput("this model supports chat only", code="unsupported_model")
