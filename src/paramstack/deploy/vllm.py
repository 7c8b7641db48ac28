"""The ``vllm serve`` command and the chart's ``llm`` values, built from the registry.

The base model is a registered ``transformers`` model (its production version) or a hub id;
the LoRA adapters are the production versions of the tenants' ``default_adapter`` models. Every
flag is checked against the flag list extracted from the pinned vLLM release's wheel
(``vllm_flags.json``, see ``deploy/scripts/vllm_flags.py``), and the Helm template emits the
same flags in the same order (checked by the tests), so the two launch paths cannot diverge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from paramstack.errors import InvalidInput, NotFound
from paramstack.registry import versions
from paramstack.store.tables import Stage
from paramstack.store.tenant_tables import Tenant

FLAGS_FILE = Path(__file__).with_name("vllm_flags.json")


@cache
def pinned() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FLAGS_FILE.read_text())
    return data


@dataclass(frozen=True)
class Adapter:
    name: str
    path: str
    rank: int = 16


@dataclass(frozen=True)
class VllmPlan:
    model: str
    served_model_name: str = "base"
    max_model_len: int = 4096
    gpu_memory_utilization: float = 0.9
    tensor_parallel_size: int = 1
    kv_cache_dtype: str = "fp8"
    adapters: tuple[Adapter, ...] = ()
    max_loras: int = 4
    draft_model: str | None = None
    num_speculative_tokens: int = 4
    port: int = 8000
    extra: tuple[str, ...] = field(default=())

    @property
    def max_lora_rank(self) -> int:
        """Smallest rank vLLM accepts that holds every adapter (it pre-allocates that much)."""
        need = max((a.rank for a in self.adapters), default=16)
        ranks = [int(r) for r in pinned()["choices"]["--max-lora-rank"]]
        fitting = [r for r in ranks if r >= need]
        if not fitting:
            raise InvalidInput(f"LoRA rank {need} exceeds vLLM's maximum {ranks[-1]}")
        return fitting[0]


def engine_args(plan: VllmPlan) -> list[str]:
    """Flags after the model, in the order the Helm template writes them."""
    args = [
        f"--served-model-name={plan.served_model_name}",
        f"--max-model-len={plan.max_model_len}",
        f"--gpu-memory-utilization={plan.gpu_memory_utilization}",
        f"--tensor-parallel-size={plan.tensor_parallel_size}",
        f"--kv-cache-dtype={plan.kv_cache_dtype}",
    ]
    if plan.adapters:
        args += ["--enable-lora", f"--max-loras={plan.max_loras}"]
        args += [f"--max-lora-rank={plan.max_lora_rank}", "--lora-modules"]
        args += [f"{a.name}={a.path}" for a in plan.adapters]
    if plan.draft_model:
        spec = {"model": plan.draft_model, "num_speculative_tokens": plan.num_speculative_tokens}
        args.append(f"--speculative-config={json.dumps(spec, separators=(',', ':'))}")
    return args + list(plan.extra)


def serve_argv(plan: VllmPlan) -> list[str]:
    return ["vllm", "serve", plan.model, *engine_args(plan), f"--port={plan.port}"]


def check_flags(argv: list[str]) -> list[str]:
    """Flags unknown to the pinned vLLM, and values outside its choices."""
    data = pinned()
    known, choices = set(data["flags"]), data["choices"]
    problems: list[str] = []
    for arg in argv:
        if not arg.startswith("--"):
            continue
        flag, _, value = arg.partition("=")
        if flag not in known:
            problems.append(f"{flag} is not a flag of vLLM {data['vllm']}")
        elif flag in choices and value and value not in map(str, choices[flag]):
            problems.append(f"{flag}={value}: vLLM {data['vllm']} accepts {choices[flag]}")
    return problems


def helm_values(plan: VllmPlan, *, storage_uri: str, canary_percent: int) -> dict[str, Any]:
    """The chart's ``llm`` block (validated by values.schema.json when installed)."""
    llm: dict[str, Any] = {
        "enabled": True,
        "runtimeImage": f"vllm/vllm-openai:v{pinned()['vllm']}",
        "storageUri": storage_uri,
        "servedModelName": plan.served_model_name,
        "maxModelLen": plan.max_model_len,
        "gpuMemoryUtilization": plan.gpu_memory_utilization,
        "tensorParallelSize": plan.tensor_parallel_size,
        "kvCacheDtype": plan.kv_cache_dtype,
        "loraModules": [{"name": a.name, "path": a.path} for a in plan.adapters],
        "maxLoras": plan.max_loras,
        "maxLoraRank": plan.max_lora_rank,
        "speculative": None,
        "canaryTrafficPercent": canary_percent,
        "gpus": plan.tensor_parallel_size,
    }
    if plan.draft_model:
        llm["speculative"] = {
            "model": plan.draft_model,
            "numSpeculativeTokens": plan.num_speculative_tokens,
        }
    return {"llm": llm}


def _uri(path: str, artifacts_dir: Path, uri_prefix: str | None) -> str:
    """Registry paths are local to the registry host; a cluster reads the same tree elsewhere."""
    if uri_prefix is None:
        return path
    try:
        rel = Path(path).resolve().relative_to(artifacts_dir.resolve())
    except ValueError:
        return path
    return f"{uri_prefix.rstrip('/')}/{rel.as_posix()}"


def _rank(path: str) -> int:
    config = Path(path) / "adapter_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("r", 16))
    return 16


def tenant_adapters(
    session: Session, artifacts_dir: Path, uri_prefix: str | None = None
) -> tuple[Adapter, ...]:
    """Production versions of the adapters tenants use by default, one LoRA module each."""
    names = sorted({n for n in session.scalars(select(Tenant.default_adapter)) if n is not None})
    adapters = []
    for name in names:
        try:
            version = versions.get_version(session, name, stage=Stage.PRODUCTION)
        except NotFound as exc:
            raise NotFound(
                f"a tenant uses adapter {name!r}, but it has no production version: {exc}",
                code="adapter_not_found",
            ) from exc
        if version.type != "adapter":
            raise InvalidInput(f"{name!r} is a {version.type} model, not a LoRA adapter")
        path = version.artifact_path
        adapters.append(Adapter(name, _uri(path, artifacts_dir, uri_prefix), _rank(path)))
    return tuple(adapters)


def base_model(session: Session, base: str, artifacts_dir: Path, uri_prefix: str | None) -> str:
    """A registered transformers model's production artifact, else ``base`` as given."""
    try:
        version = versions.get_version(session, base, stage=Stage.PRODUCTION)
    except NotFound:
        return base
    if version.type != "transformers":
        raise InvalidInput(f"{base!r} is a {version.type} model; vLLM serves transformers models")
    return _uri(version.artifact_path, artifacts_dir, uri_prefix)
