"""Pydantic models mirroring OpenAI's request and response shapes (as vLLM's ``protocol``).

Requests are validated for the fields the gateway itself relies on (model, messages or prompt
or input, token limits, streaming); other OpenAI parameters (tools, response_format, seed…)
are accepted and passed to the backend unchanged (``extra="allow"``), so new OpenAI options
work without a gateway release. Response models document the schema; the gateway forwards
the backend's JSON with the public model name rather than re-validating it on the hot path.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# Strict, like OpenAI's API: ``"stream": 0`` or ``"n": "2"`` is a 400, not silently coerced.
_PASS_THROUGH = ConfigDict(extra="allow", strict=True)


def _whole_number(value: Any) -> Any:
    """JSON Schema's ``integer`` includes ``2.0``; pydantic's strict ``int`` does not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The bound sits inside Annotated: ``Field(ge=1)`` outside an ``X | None`` with a validator
# leaks into the JSON schema as a bogus "ge" key instead of "minimum".
TokenCount = Annotated[int, Field(ge=1), BeforeValidator(_whole_number)]
ChoiceCount = Annotated[int, Field(ge=1, le=16), BeforeValidator(_whole_number)]
# Length bounds per union branch, so the JSON schema states them (minLength / minItems).
Text = Annotated[str, Field(min_length=1)]
Texts = Annotated[list[str], Field(min_length=1)]
TokenIds = Annotated[list[int], Field(min_length=1)]
TokenIdLists = Annotated[list[TokenIds], Field(min_length=1)]


class StreamOptions(BaseModel):
    model_config = ConfigDict(strict=True)

    include_usage: bool = False


class ChatMessage(BaseModel):
    model_config = _PASS_THROUGH

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None


class ChatCompletionRequest(BaseModel):
    model_config = _PASS_THROUGH

    model: str = Field(min_length=1, max_length=256)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: TokenCount | None = None
    max_completion_tokens: TokenCount | None = None
    n: ChoiceCount = 1
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(None, max_length=256)


class CompletionRequest(BaseModel):
    model_config = _PASS_THROUGH

    model: str = Field(min_length=1, max_length=256)
    prompt: Text | Texts
    max_tokens: TokenCount | None = None
    n: ChoiceCount = 1
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(None, max_length=256)


class EmbeddingRequest(BaseModel):
    model_config = _PASS_THROUGH

    model: str = Field(min_length=1, max_length=256)
    input: Text | Texts | TokenIds | TokenIdLists
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: TokenCount | None = None
    user: str | None = Field(None, max_length=256)


_RESPONSE = ConfigDict(extra="allow")


class UsageInfo(BaseModel):
    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int


class ChatCompletionResponse(BaseModel):
    model_config = _RESPONSE

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: UsageInfo


class CompletionResponse(BaseModel):
    model_config = _RESPONSE

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: UsageInfo


class EmbeddingResponse(BaseModel):
    model_config = _RESPONSE

    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
    model: str
    usage: UsageInfo


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
