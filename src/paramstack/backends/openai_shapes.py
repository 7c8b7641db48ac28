"""OpenAI response bodies for in-process backends, shaped as an OpenAI-compatible upstream
sends them, so the gateway (usage chunk, guard rewrites, attestation) cannot tell them apart."""

from __future__ import annotations

import base64
import struct
import time
import uuid
from typing import Any

from paramstack.backends.protocol import Usage


def usage_body(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


class Shaper:
    """Bodies of one response: chat (``chat.completion[.chunk]``) or text completions."""

    def __init__(self, chat: bool, model: str) -> None:
        self.chat = chat
        self.model = model
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def _body(self, obj: str, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": obj,
            "created": self.created,
            "model": self.model,
            "choices": choices,
            **extra,
        }

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return self._body(
            "chat.completion.chunk" if self.chat else "text_completion", choices, **extra
        )

    def role(self, index: int) -> dict[str, Any]:
        """The first chunk of a chat choice, as OpenAI sends it."""
        delta = {"role": "assistant", "content": ""}
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": None}
        return self._chunk([choice])

    def delta(self, index: int, text: str, finish_reason: str | None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": index}
        if self.chat:
            choice["delta"] = {"content": text} if text else {}
        else:
            choice["text"] = text
        choice.update(logprobs=None, finish_reason=finish_reason)
        return self._chunk([choice])

    def usage(self, usage: Usage) -> dict[str, Any]:
        """The final chunk: no choices, the usage (``stream_options.include_usage``)."""
        return self._chunk([], usage=usage_body(usage))

    def whole(self, texts: dict[int, str], reasons: dict[int, str], usage: Usage) -> dict[str, Any]:
        choices: list[dict[str, Any]] = []
        for index in sorted(texts):
            choice: dict[str, Any] = {"index": index}
            if self.chat:
                choice["message"] = {"role": "assistant", "content": texts[index]}
            else:
                choice["text"] = texts[index]
            choice.update(logprobs=None, finish_reason=reasons.get(index, "length"))
            choices.append(choice)
        obj = "chat.completion" if self.chat else "text_completion"
        return self._body(obj, choices, usage=usage_body(usage))


def embeddings_body(
    model: str, vectors: list[list[float]], usage: Usage, encoding: str
) -> dict[str, Any]:
    """OpenAI's embeddings list; ``base64`` is little-endian float32, as OpenAI encodes it."""
    data = []
    for index, vector in enumerate(vectors):
        value: list[float] | str = vector
        if encoding == "base64":
            value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": value})
    return {"object": "list", "data": data, "model": model, "usage": usage_body(usage)}
