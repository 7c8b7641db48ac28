"""Upper bounds on a request's prompt tokens, for the quota reservation made before the call.

The bill uses the backend's own count; this bound only has to be safe (never below the real
count) and cheap. The raw JSON body length in bytes is one: every token of a byte-level BPE or
SentencePiece (byte-fallback) vocabulary covers at least one byte of text, every piece of
text in the prompt appears in the body, and JSON escapes are never shorter than what they
encode. Chat templates add a few special tokens per message, hence ``PER_MESSAGE``. The cost
is over-reservation (a few dozen tokens of JSON syntax per request), released at settle; a
tokenizer for each upstream model would tighten it (not built yet).
"""

from __future__ import annotations

PER_MESSAGE = 8  # role markers, separators and BOS/EOS a chat template may add per message
PER_REQUEST = 8  # the assistant turn header and similar


def chat_bound(body_bytes: int, messages: int) -> int:
    return body_bytes + PER_MESSAGE * messages + PER_REQUEST


def text_bound(body_bytes: int) -> int:
    return body_bytes + PER_REQUEST


def embedding_bound(inputs: str | list[str] | list[int] | list[list[int]], body_bytes: int) -> int:
    """Token-id inputs are exact; text inputs use the body bound plus BOS/EOS per input."""
    if isinstance(inputs, list) and inputs and isinstance(inputs[0], int):
        return len(inputs)
    if isinstance(inputs, list) and inputs and isinstance(inputs[0], list):
        return sum(len(item) for item in inputs if isinstance(item, list))
    count = 1 if isinstance(inputs, str) else len(inputs)
    return body_bytes + 2 * count
