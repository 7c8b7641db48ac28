"""The one protocol every LLM backend implements, and the decorator registry that names them.

Bodies stay OpenAI-shaped JSON objects end to end: the gateway validates the client's request
with pydantic, then hands the backend a plain ``dict`` whose ``model`` is already the backend's
own model name. An OpenAI-compatible upstream (vLLM, Ollama, a provider) forwards it as is, and
an in-process backend reads the few fields it needs, so no backend needs its own request type.

Token counts come from the backend (the model's tokenizer or the upstream's ``usage`` field);
the gateway settles quotas and prices the ledger row with them, never with an estimate.
Backends register themselves with ``@backend("name")``; ``build_backend`` finds them by name and
says which names are valid when one is not.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import SecretStr

from paramstack.backends.circuit import CircuitBreaker
from paramstack.errors import InvalidInput

# Modules imported on demand by ``build_backend`` so their ``@backend`` decorators run; nothing
# is imported at ``import paramstack`` time (a backend may pull in heavy libraries).
BUILTIN_MODULES = (
    "paramstack.backends.openai_upstream",
    "paramstack.backends.anthropic_upstream",
    "paramstack.backends.transformers_local",
)


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens as the model counted them."""

    prompt_tokens: int
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_openai(cls, usage: Any) -> Usage | None:
        """The ``usage`` object of an OpenAI-shaped response, or None when absent/malformed."""
        if not isinstance(usage, dict):
            return None
        prompt = usage.get("prompt_tokens")
        completion = usage.get("completion_tokens", 0) or 0
        if not isinstance(prompt, int) or not isinstance(completion, int):
            return None
        return cls(prompt, completion)


@dataclass(frozen=True, slots=True)
class ChatResult:
    """A whole (non-streamed) response body and the usage read from it."""

    body: dict[str, Any]
    usage: Usage


@dataclass(frozen=True, slots=True)
class ChatChunk:
    """One streamed event: the parsed chunk, and its usage when the chunk carries one (OpenAI
    sends usage in a final chunk with no choices when ``stream_options.include_usage`` is on)."""

    body: dict[str, Any]
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """Where and how to reach one backend; built from ``configs/gateway/models.yaml``.

    ``options`` holds what only some backends read (an in-process model's path, adapters,
    device): sorted ``(name, value)`` pairs with hashable values, so equal configs still
    share one backend."""

    kind: str
    base_url: str = ""
    api_key: SecretStr | None = field(default=None, repr=False)
    timeout_s: float = 60.0
    connect_timeout_s: float = 5.0
    max_retries: int = 2
    backoff_s: float = 0.1
    breaker_failures: int = 5
    breaker_reset_s: float = 30.0
    options: tuple[tuple[str, Any], ...] = ()

    def option(self, name: str, default: Any = None) -> Any:
        return dict(self.options).get(name, default)


class ChatBackend(Protocol):
    """What the gateway's serving classes call. ``capabilities`` names the endpoint families
    the backend supports (``chat``, ``completions``, ``embeddings``); the others raise."""

    kind: str
    capabilities: frozenset[str]

    async def chat(self, request: dict[str, Any]) -> ChatResult: ...

    def stream_chat(self, request: dict[str, Any]) -> AsyncIterator[ChatChunk]: ...

    async def completions(self, request: dict[str, Any]) -> ChatResult: ...

    def stream_completions(self, request: dict[str, Any]) -> AsyncIterator[ChatChunk]: ...

    async def embeddings(self, request: dict[str, Any]) -> ChatResult: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Observable(Protocol):
    """A backend that retries and has a circuit breaker: the gateway's metrics read the
    breaker's state and set ``on_retry`` (called with the upstream model name per retry),
    so backends stay free of any metrics library."""

    breaker: CircuitBreaker
    on_retry: Callable[[str], None] | None


BackendFactory = Callable[[BackendConfig], ChatBackend]
_FACTORIES: dict[str, BackendFactory] = {}


def backend(name: str) -> Callable[[BackendFactory], BackendFactory]:
    """Register a backend class (or factory) under ``name``; a second use of a name is a bug."""

    def register(factory: BackendFactory) -> BackendFactory:
        if name in _FACTORIES and _FACTORIES[name] is not factory:
            raise ValueError(f"backend {name!r} is already registered")
        _FACTORIES[name] = factory
        return factory

    return register


def backend_names() -> list[str]:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    return sorted(_FACTORIES)


def build_backend(config: BackendConfig) -> ChatBackend:
    """A new backend of ``config.kind``; an unknown kind names the valid ones."""
    valid = backend_names()
    factory = _FACTORIES.get(config.kind)
    if factory is None:
        raise InvalidInput(
            f"unknown backend {config.kind!r}; valid: {', '.join(valid)}",
            code="unknown_backend",
            param="backend",
        )
    return factory(config)
