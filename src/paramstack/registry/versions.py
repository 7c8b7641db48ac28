"""Register, look up and move model versions between stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from paramstack.errors import Conflict, InvalidInput, NotFound
from paramstack.registry.adapter_check import inspect_adapter
from paramstack.registry.artifacts import fingerprint, store_artifact, write_meta
from paramstack.registry.onnx_check import check_declared, inspect_onnx
from paramstack.registry.stages import check_transition
from paramstack.store.tables import ABStatus, ABTest, Model, ModelVersion, Stage

MODEL_TYPES = ("onnx", "transformers", "adapter", "gguf", "tokenizer")


@dataclass
class Registration:
    """What a build job (or a person) hands to the registry."""

    name: str
    artifact: Path
    type: str = "onnx"
    domain: str = "general"
    description: str = ""
    class_labels: list[str] = field(default_factory=list)
    input_shape: list[int] | None = None
    output_shape: list[int] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)


def _validate_name(name: str) -> None:
    if not name or len(name) > 128 or not all(c.isalnum() or c in "-_." for c in name):
        raise InvalidInput(
            f"invalid model name {name!r}: use letters, digits, '-', '_' or '.' (max 128)",
            param="name",
        )


def register(session: Session, reg: Registration, artifacts_root: Path) -> ModelVersion:
    """Validate, copy and record a new version in stage ``registered``; refuses bad files."""
    _validate_name(reg.name)
    if reg.type not in MODEL_TYPES:
        raise InvalidInput(
            f"unknown model type {reg.type!r}; valid: {', '.join(MODEL_TYPES)}", param="type"
        )
    if not reg.artifact.exists():
        raise InvalidInput(f"artifact not found: {reg.artifact}", param="artifact")
    opset = None
    input_shape, output_shape = reg.input_shape or [], reg.output_shape or []
    if reg.type == "onnx":
        if not reg.artifact.is_file():
            raise InvalidInput("an onnx artifact must be a single .onnx file", param="artifact")
        sig = inspect_onnx(reg.artifact)
        check_declared(
            sig,
            input_shape=reg.input_shape,
            output_shape=reg.output_shape,
            class_labels=reg.class_labels,
        )
        opset, input_shape, output_shape = sig.opset, sig.input_shape, sig.output_shape
    lineage, metrics = dict(reg.lineage), dict(reg.metrics)
    if reg.type == "adapter":
        lineage, metrics = _adapter_record(reg)
    sha256, size = fingerprint(reg.artifact)

    model = session.scalar(select(Model).where(Model.name == reg.name))
    if model is None:
        model = Model(name=reg.name, type=reg.type, domain=reg.domain, description=reg.description)
        session.add(model)
        session.flush()
    elif model.type != reg.type:
        raise Conflict(
            f"model {reg.name!r} holds {model.type} versions; cannot add a {reg.type} version",
            param="type",
        )
    latest = session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id)
    )
    number = (latest or 0) + 1
    stored = store_artifact(reg.artifact, artifacts_root, reg.name, number)
    version = ModelVersion(
        model_id=model.id,
        version=number,
        type=reg.type,
        artifact_path=str(stored),
        size_bytes=size,
        sha256=sha256,
        opset=opset,
        input_shape=input_shape,
        output_shape=output_shape,
        class_labels=list(reg.class_labels),
        metrics=metrics,
        lineage=lineage,
        stage=Stage.REGISTERED,
    )
    session.add(version)
    session.flush()
    version.model = model
    write_meta(stored, describe(version))
    return version


def _adapter_record(reg: Registration) -> tuple[dict[str, Any], dict[str, Any]]:
    """Lineage and metrics of an adapter: the trainer's record, overridden by the caller's;
    the base model is always recorded (an adapter is useless without it)."""
    info = inspect_adapter(reg.artifact, reg.lineage.get("base_model"))
    lineage = {**info.sidecar.get("lineage", {}), **reg.lineage, "base_model": info.base_model}
    lineage["adapter"] = {
        "peft_type": info.peft_type,
        "r": info.rank,
        "target_modules": info.target_modules,
        "tensors": info.tensors,
    }
    return lineage, {**info.sidecar.get("metrics", {}), **reg.metrics}


def get_model(session: Session, name: str) -> Model:
    model = session.scalar(
        select(Model).where(Model.name == name).options(selectinload(Model.versions))
    )
    if model is None:
        raise NotFound(f"model {name!r} is not registered", code="model_not_found")
    return model


def list_models(session: Session) -> list[Model]:
    return list(
        session.scalars(select(Model).options(selectinload(Model.versions)).order_by(Model.name))
    )


def get_version(
    session: Session, name: str, version: int | None = None, stage: Stage | None = None
) -> ModelVersion:
    """A specific version, else the newest version in ``stage``, else the newest version."""
    model = get_model(session, name)
    candidates = model.versions
    if version is not None:
        candidates = [v for v in candidates if v.version == version]
    if stage is not None:
        candidates = [v for v in candidates if v.stage == stage]
    if not candidates:
        wanted = f"version {version}" if version is not None else f"a {stage} version"
        raise NotFound(f"model {name!r} has no {wanted}", code="version_not_found")
    return candidates[-1]


def adapter_artifact_dir(
    session: Session, name: str, version: int | None = None, stage: Stage | None = None
) -> Path:
    """The stored directory of a registered adapter version: what a transformers backend
    (or a gateway config entry) points at to serve it on top of ``lineage.base_model``."""
    chosen = get_version(session, name, version, stage)
    if chosen.type != "adapter":
        raise InvalidInput(
            f"{name} v{chosen.version} is a {chosen.type} version, not an adapter", param="name"
        )
    return Path(chosen.artifact_path)


def set_stage(session: Session, name: str, version: int, target: Stage) -> list[ModelVersion]:
    """Move a version; returns every version whose stage changed (for cache eviction)."""
    chosen = get_version(session, name, version)
    if chosen.stage == target:
        return []
    check_transition(chosen.stage, target)
    displaced = [
        v
        for v in chosen.model.versions
        if target == Stage.PRODUCTION and v.stage == Stage.PRODUCTION and v.id != chosen.id
    ]
    leaving = displaced + ([chosen] if target == Stage.ARCHIVED else [])
    _refuse_if_in_running_abtest(session, leaving)
    for other in displaced:
        other.stage = Stage.ARCHIVED
    chosen.stage = target
    session.flush()
    return [chosen, *displaced]


def _refuse_if_in_running_abtest(session: Session, versions: list[ModelVersion]) -> None:
    if not versions:
        return
    ids = [v.id for v in versions]
    test = session.scalar(
        select(ABTest).where(
            ABTest.status == ABStatus.RUNNING,
            (ABTest.version_a_id.in_(ids)) | (ABTest.version_b_id.in_(ids)),
        )
    )
    if test is not None:
        raise Conflict(
            f"A/B test {test.name!r} is running on this version; stop it first",
            code="abtest_running",
        )


def describe(version: ModelVersion) -> dict[str, Any]:
    """A JSON-ready view of a version (CLI ``--json``, admin API, meta.json)."""
    return {
        "name": version.model.name,
        "version": version.version,
        "type": version.type,
        "domain": version.model.domain,
        "stage": version.stage.value,
        "artifact_path": version.artifact_path,
        "size_bytes": version.size_bytes,
        "sha256": version.sha256,
        "opset": version.opset,
        "input_shape": version.input_shape,
        "output_shape": version.output_shape,
        "class_labels": version.class_labels,
        "metrics": version.metrics,
        "lineage": version.lineage,
        "created_at": version.created_at.isoformat() if version.created_at else None,
        "updated_at": version.updated_at.isoformat() if version.updated_at else None,
    }
