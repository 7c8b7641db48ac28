"""The SSE body of a streamed chat or completion: each upstream chunk rewritten by the guard,
renamed to the public model and framed as ``data: ...``; then the guard's held-back tails, the
RAG citations and the signature as trailing events, and ``[DONE]``. The call's ledger row and
quota settle happen in ``finally``, so a client that goes away is still billed exactly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from paramstack.backends.protocol import ChatChunk, Usage
from paramstack.errors import ParamstackError
from paramstack.gateway.chat_guard import StreamGuard, run_guard

if TYPE_CHECKING:
    from paramstack.gateway.serving_call import Call


def _event(chunk: ChatChunk, public_model: str, include_usage: bool) -> bytes | None:
    body = chunk.body
    if chunk.usage is not None and not include_usage:
        if not body.get("choices"):
            return None  # the usage-only final chunk the client did not ask for
        body.pop("usage", None)
    body["model"] = public_model
    return b"data: " + orjson.dumps(body) + b"\n\n"


def collect(body: dict[str, Any], sent: dict[int, list[str]]) -> None:
    for choice in body.get("choices") or []:
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
        if isinstance(text, str):
            sent.setdefault(int(choice.get("index", 0)), []).append(text)


def _tail_event(last: dict[str, Any], index: int, text: str, public_model: str) -> bytes:
    """Held-back text of a choice whose stream ended without a finish_reason chunk."""
    chat = last.get("object") == "chat.completion.chunk"
    choice: dict[str, Any] = {"index": index, "finish_reason": None}
    choice.update({"delta": {"content": text}} if chat else {"text": text})
    body = {k: last[k] for k in ("id", "object", "created") if k in last}
    return b"data: " + orjson.dumps({**body, "model": public_model, "choices": [choice]}) + b"\n\n"


async def sse_events(
    call: Call,
    first: ChatChunk | None,
    chunks: AsyncIterator[ChatChunk],
    include_usage: bool,
    guard: StreamGuard | None,
) -> AsyncIterator[bytes]:
    usage: Usage | None = None
    status, status_code = "incomplete", 499
    last: dict[str, Any] = {}
    sent: dict[int, list[str]] = {}  # what the caller received per choice, for the signature
    try:
        chunk = first
        while chunk is not None:
            usage = chunk.usage or usage
            if guard is not None:
                await run_guard(guard.guard, guard.rewrite, chunk.body)
            last = chunk.body
            collect(chunk.body, sent)
            event = _event(chunk, call.route.name, include_usage)
            if event is not None:
                yield event
            chunk = await anext(chunks, None)
        if guard is not None:
            for index, text in (await run_guard(guard.guard, guard.leftovers)).items():
                sent.setdefault(index, []).append(text)
                yield _tail_event(last, index, text, call.route.name)
        attestation = call.serving.attest(call, ["".join(sent[i]) for i in sorted(sent)])
        tail: dict[str, Any] = {k: last[k] for k in ("id", "object", "created") if k in last}
        tail.update(model=call.route.name, choices=[])
        if call.grounding is not None:  # the citations, in the final event(s) of a stream
            yield b"data: " + orjson.dumps({**tail, "rag": call.grounding.extension()}) + b"\n\n"
        if attestation is not None:  # a trailing event, as the stream's headers are long gone
            yield b"data: " + orjson.dumps({**tail, "attestation": attestation}) + b"\n\n"
        yield b"data: [DONE]\n\n"
        status, status_code = ("ok", 200) if usage is not None else ("incomplete", 200)
    except ParamstackError as exc:  # headers are gone: report in-band, as OpenAI does
        status, status_code = exc.code, exc.http_status
        yield b"data: " + orjson.dumps(exc.to_openai()) + b"\n\n"
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
        await call.finish(usage, status, status_code, started=True)
