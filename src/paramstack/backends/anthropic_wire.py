"""OpenAI chat shapes <-> Anthropic Messages API shapes (``POST /v1/messages``), no I/O.

The gateway speaks OpenAI to its clients; an Anthropic upstream speaks Messages. Differences
this module absorbs (as of API version ``2023-06-01``):
- system (and ``developer``) messages are a top-level ``system`` string, not messages;
- ``max_tokens`` is required (the gateway always sets one, it bounds the quota reservation);
- ``stop`` is ``stop_sequences``, ``user`` is ``metadata.user_id``; temperature is 0-1, not
  0-2, and there is no ``n``: values Anthropic cannot honour are a 400, not silently changed;
- answers are content blocks (only ``text`` blocks become the message), ``stop_reason``
  becomes ``finish_reason``, and the prompt tokens are ``input_tokens`` plus both cache counts
  (cached tokens are still tokens the tenant used);
- a stream is typed SSE events; ``StreamTranslator`` turns them into OpenAI chunks and ends
  with a usage-only chunk, as an OpenAI stream with ``include_usage`` does.
"""

from __future__ import annotations

import time
from typing import Any

from paramstack.backends.protocol import ChatChunk, Usage
from paramstack.errors import InvalidInput, UpstreamError

ANTHROPIC_VERSION = "2023-06-01"
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# OpenAI options with no Anthropic translation here: refusing beats answering differently.
UNSUPPORTED = (
    "tools", "tool_choice", "functions", "function_call", "response_format", "logprobs",
    "top_logprobs", "audio", "modalities", "prediction",
)  # fmt: skip


def _text(content: Any) -> str:
    """A message's text: a string, or OpenAI content parts of type ``text`` only."""
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text":
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise InvalidInput(
                f"this model takes text content only, not {str(kind)[:32]!r} parts",
                code="unsupported_content",
                param="messages",
            )
        texts.append(str(part.get("text", "")))
    return "".join(texts)


def to_messages_request(body: dict[str, Any]) -> dict[str, Any]:
    """The Messages request for an OpenAI chat request (``model`` already the upstream's)."""
    for name in UNSUPPORTED:
        if body.get(name) is not None:
            raise InvalidInput(f"{name} is not supported by this model", param=name)
    if body.get("n", 1) != 1:
        raise InvalidInput("this model returns one choice per request (n=1)", param="n")
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for message in body["messages"]:
        role, text = message.get("role"), _text(message.get("content"))
        if role in ("system", "developer"):
            system.append(text)
        elif role not in ("user", "assistant"):
            raise InvalidInput(f"this model does not take {role!r} messages", param="messages")
        elif messages and messages[-1]["role"] == role:  # Anthropic alternates roles
            messages[-1]["content"] += "\n\n" + text
        else:
            messages.append({"role": role, "content": text})
    if not messages:
        raise InvalidInput("at least one user message is needed", param="messages")
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if not isinstance(limit, int):
        raise InvalidInput("max_tokens is required", param="max_tokens")
    out: dict[str, Any] = {"model": body["model"], "max_tokens": limit, "messages": messages}
    if system:
        out["system"] = "\n\n".join(system)
    temperature = body.get("temperature")
    if temperature is not None:
        if temperature > 1:
            raise InvalidInput("this model takes a temperature from 0 to 1", param="temperature")
        out["temperature"] = temperature
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    if body.get("stream"):
        out["stream"] = True
    return out


def usage_of(usage: Any) -> Usage | None:
    """Anthropic's ``usage``; prompt tokens include cache writes and reads."""
    if not isinstance(usage, dict):
        return None
    counts = [usage.get(k) or 0 for k in ("input_tokens", "cache_creation_input_tokens")]
    counts.append(usage.get("cache_read_input_tokens") or 0)
    output = usage.get("output_tokens") or 0
    if not all(isinstance(c, int) for c in [*counts, output]) or "input_tokens" not in usage:
        return None
    return Usage(sum(counts), output)


def _usage_body(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def from_message(message: Any) -> tuple[dict[str, Any], Usage]:
    """The OpenAI ``chat.completion`` body and usage for an Anthropic message."""
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise UpstreamError("the upstream answered with an unexpected body")
    usage = usage_of(message.get("usage"))
    if usage is None:
        raise UpstreamError("the upstream response has no usage field", code="upstream_usage")
    text = "".join(
        str(block.get("text", ""))
        for block in message["content"]
        if isinstance(block, dict) and block.get("type") == "text"
    )
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": FINISH_REASONS.get(str(message.get("stop_reason")), "stop"),
    }
    body = {
        "id": str(message.get("id", "")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(message.get("model", "")),
        "choices": [choice],
        "usage": _usage_body(usage),
    }
    return body, usage


class StreamTranslator:
    """Anthropic stream events in, OpenAI ``chat.completion.chunk`` bodies out."""

    def __init__(self) -> None:
        self.base: dict[str, Any] = {"id": "", "object": "chat.completion.chunk", "model": ""}
        self.base["created"] = int(time.time())
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.done = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> ChatChunk:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return ChatChunk({**self.base, "choices": [choice]})

    def feed(self, event: dict[str, Any]) -> list[ChatChunk]:
        """The chunks one event becomes (often none: pings, block starts and stops)."""
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.base.update(id=str(message.get("id", "")), model=str(message.get("model", "")))
            self._count(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                return [self._chunk({"content": str(delta["text"])})]
            return []
        if kind == "message_delta":
            self._count(event.get("usage"))
            reason = (event.get("delta") or {}).get("stop_reason")
            return [self._chunk({}, FINISH_REASONS.get(str(reason), "stop"))] if reason else []
        if kind == "message_stop":
            self.done = True
            usage = Usage(self.prompt_tokens, self.completion_tokens)
            body = {**self.base, "choices": [], "usage": _usage_body(usage)}
            return [ChatChunk(body, usage)]
        if kind == "error":
            error = event.get("error") or {}
            code = str(error.get("type") or "unknown")[:64]
            raise UpstreamError(f"the upstream stream failed ({code})", code="upstream_error")
        return []

    def _count(self, usage: Any) -> None:
        """message_start carries the input count, message_delta the cumulative output count
        (newer versions repeat the input and cache counts there, possibly only some of them):
        counts are cumulative, so the largest seen of each is the total."""
        parsed = usage_of({"input_tokens": 0, **usage}) if isinstance(usage, dict) else None
        if parsed is not None:
            self.prompt_tokens = max(self.prompt_tokens, parsed.prompt_tokens)
            self.completion_tokens = max(self.completion_tokens, parsed.completion_tokens)
