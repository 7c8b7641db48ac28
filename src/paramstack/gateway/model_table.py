"""Which backend serves each public LLM model name, read from a small YAML file.

``configs/gateway/models.yaml`` (or the file named by the ``llm_models_file`` setting) lists
public names with the backend and upstream model behind each; see that file for every field.
Upstream API keys are never written in it: ``api_key_env`` names the environment variable
that holds one. Models that share an upstream share one backend (one connection pool and one
circuit breaker), since they fail together.

LoRA adapters are models too, as in vLLM: each entry of a model's ``adapters`` is listed as its
own public name served by the same backend (one copy of the base weights), and a tenant's
``default_adapter`` is applied when that tenant calls the base name (``with_adapter``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from paramstack.backends.protocol import BackendConfig, ChatBackend, Observable, build_backend
from paramstack.errors import InvalidInput, NotFound
from paramstack.gateway.router_spec import RouterSpec


class ModelSpec(BaseModel):
    """One entry of ``models:`` in the YAML file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, description="What clients send as model.")
    backend: str = Field("openai-compatible", description="A registered backend name.")
    base_url: str = Field("", description="The upstream's /v1 URL.")
    upstream_model: str | None = Field(None, description="Name upstream; default: name.")
    api_key_env: str | None = Field(None, description="Env variable holding the upstream key.")
    kind: Literal["chat", "embedding"] = "chat"
    max_output_tokens: int = Field(
        1024, ge=1, description="Sent as max_tokens when the client sets none (quota bound)."
    )
    timeout_s: float = Field(60.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    max_retries: int = Field(2, ge=0, le=10)
    backoff_s: float = Field(0.1, ge=0)
    breaker_failures: int = Field(5, ge=1)
    breaker_reset_s: float = Field(30.0, gt=0)
    owned_by: str = "paramstack"
    # In-process backends (``transformers``): what to load and how much to run at once.
    model: str | None = Field(None, description="Model directory, .gguf file or hub id.")
    adapters: dict[str, str] = Field(
        default_factory=dict, description="Adapter public name -> PEFT adapter directory."
    )
    max_concurrency: int = Field(1, ge=1, le=64, description="Generations running at once.")
    device: str = Field("cpu", pattern=r"^(cpu|mps|cuda(:\d+)?)$")
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    threads: int | None = Field(None, ge=1, le=256, description="torch threads (process-wide).")

    @model_validator(mode="after")
    def _adapter_names(self) -> ModelSpec:
        for adapter in self.adapters:
            if not adapter or len(adapter) > 128 or adapter in (self.name, self.upstream_model):
                raise ValueError(f"adapter name {adapter!r} must be 1-128 chars, not the model's")
        return self


class ModelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[ModelSpec] = Field(default_factory=list)
    routers: list[RouterSpec] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ModelRoute:
    name: str
    upstream_model: str
    kind: str
    max_output_tokens: int
    owned_by: str
    backend: ChatBackend
    adapters: frozenset[str] | None = None  # served on top of this base (public names)


def _local_path(base: Path, value: str, *, hub_id: bool = False) -> str:
    """A path in the file, relative to the file's directory; with ``hub_id``, a value like
    "org/name" that is no such path stays as it is (transformers fetches it)."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    candidate = base / path
    keep = hub_id and not candidate.exists() and not value.startswith(".")
    return value if keep else str(candidate)


def _backend_config(spec: ModelSpec, base: Path = Path()) -> BackendConfig:
    adapters = spec.adapters.items()
    api_key = None
    if spec.api_key_env:
        value = os.environ.get(spec.api_key_env)
        if not value:
            raise InvalidInput(
                f"model {spec.name!r}: environment variable {spec.api_key_env} is not set",
                param="api_key_env",
            )
        api_key = SecretStr(value)
    return BackendConfig(
        kind=spec.backend,
        base_url=spec.base_url,
        api_key=api_key,
        timeout_s=spec.timeout_s,
        connect_timeout_s=spec.connect_timeout_s,
        max_retries=spec.max_retries,
        backoff_s=spec.backoff_s,
        breaker_failures=spec.breaker_failures,
        breaker_reset_s=spec.breaker_reset_s,
        options=(  # sorted by name, hashable: equal configs share one backend
            ("adapters", tuple(sorted((k, _local_path(base, v)) for k, v in adapters))),
            ("device", spec.device),
            ("dtype", spec.dtype),
            ("max_concurrency", spec.max_concurrency),
            ("model", spec.model and _local_path(base, spec.model, hub_id=True)),
            ("threads", spec.threads),
        ),
    )


class ModelTable:
    """Public model name -> route; built once in the lifespan, closed on shutdown."""

    def __init__(
        self, specs: list[ModelSpec], routers: list[RouterSpec] | None = None, base: Path = Path()
    ) -> None:
        self.routers = routers or []  # virtual models, served by ``llm_router``
        self.base = base  # relative paths in the file are relative to its directory
        self._routes: dict[str, ModelRoute] = {}
        self._backends: dict[BackendConfig, ChatBackend] = {}
        for spec in specs:
            config = _backend_config(spec, base)
            if config not in self._backends:
                self._backends[config] = build_backend(config)
            route = ModelRoute(
                name=spec.name,
                upstream_model=spec.upstream_model or spec.name,
                kind=spec.kind,
                max_output_tokens=spec.max_output_tokens,
                owned_by=spec.owned_by,
                backend=self._backends[config],
                adapters=frozenset(spec.adapters) or None,
            )
            self._add(route)
            for adapter in spec.adapters:  # the backend serves it under its own name
                self._add(replace(route, name=adapter, upstream_model=adapter, adapters=None))

    def _add(self, route: ModelRoute) -> None:
        if route.name in self._routes:
            raise InvalidInput(f"model {route.name!r} is listed twice", param="models")
        self._routes[route.name] = route

    @classmethod
    def from_file(cls, path: Path | None) -> ModelTable:
        """The table in ``path``; no file configured means no LLM models (an empty list)."""
        if path is None:
            return cls([])
        try:
            raw = yaml.safe_load(path.read_text()) or {}
            parsed = ModelsFile.model_validate(raw)
            return cls(parsed.models, parsed.routers, path.parent)
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            raise InvalidInput(f"cannot read the LLM model table {path}: {exc}") from exc

    def names(self) -> list[str]:
        return list(self._routes)

    def routes(self) -> list[ModelRoute]:
        return list(self._routes.values())

    def resolve(self, name: str, capability: str) -> ModelRoute:
        route = self._routes.get(name)
        if route is None and any(router.name == name for router in self.routers):
            raise InvalidInput(
                f"model {name!r} is a router: it serves chat completions only",
                code="unsupported_model",
                param="model",
            )
        if route is None:
            raise NotFound(
                f"The model {name[:128]!r} does not exist or you do not have access to it.",
                code="model_not_found",
                param="model",
            )
        if capability not in route.backend.capabilities or (
            (capability == "embeddings") != (route.kind == "embedding")
        ):
            raise InvalidInput(
                f"model {name!r} does not support {capability}",
                code="unsupported_model",
                param="model",
            )
        return route

    def with_adapter(self, route: ModelRoute, adapter: str | None) -> ModelRoute:
        """``route`` served through a tenant's default ``adapter`` when it is a base with
        adapters (billed under the base name); an adapter the base lacks is the tenant's
        misconfiguration, said plainly rather than silently answered by the base."""
        if adapter is None or not route.adapters:
            return route
        if adapter not in route.adapters:
            raise NotFound(
                f"the tenant's default adapter {adapter[:128]!r} is not served by model "
                f"{route.name!r} (adapters: {', '.join(sorted(route.adapters))})",
                code="adapter_not_found",
                param="model",
            )
        return replace(route, upstream_model=adapter)

    def observe_retries(self, count: Callable[[str], None]) -> None:
        """Have every retrying backend call ``count(public_name)`` per retry. Backends only
        know upstream names; a name two public models share on one backend counts for the
        first listed (they are the same upstream call)."""
        by_backend: dict[int, dict[str, str]] = {}
        for route in self._routes.values():
            names = by_backend.setdefault(id(route.backend), {})
            names.setdefault(route.upstream_model, route.name)
        for backend in self._backends.values():
            if isinstance(backend, Observable):
                names = by_backend.get(id(backend), {})
                backend.on_retry = lambda upstream, n=names: count(n.get(upstream, upstream))

    def breaker_states(self) -> dict[str, str]:
        """Public model name -> its backend's circuit state, for backends that have one."""
        return {
            route.name: route.backend.breaker.state
            for route in self._routes.values()
            if isinstance(route.backend, Observable)
        }

    async def aclose(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()
