"""LoRA adapter versions in the registry (SQLite and PostgreSQL): validated, lineage kept,
artifact directory resolvable for the transformers backend; bad adapters refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine

from paramstack.errors import InvalidInput
from paramstack.registry import versions as registry
from paramstack.registry.versions import Registration
from paramstack.store.engine import session_factory, transaction
from paramstack.store.tables import Stage
from tests.conftest import DigitsModel, SftRun


def test_adapter_registers_with_lineage_and_resolves_dir(
    engine: Engine, sft_run: SftRun, tmp_path: Path
) -> None:
    lineage = {"tokenizer": "own-tok-v1"}
    with transaction(session_factory(engine)) as session:
        v = registry.register(
            session,
            Registration(name="tr-chat", artifact=sft_run.adapter_dir, type="adapter",
                         metrics={"ppl": 12.5}, lineage=lineage),
            tmp_path / "artifacts",
        )  # fmt: skip
        registry.set_stage(session, "tr-chat", v.version, Stage.PRODUCTION)
    with transaction(session_factory(engine)) as session:
        path = registry.adapter_artifact_dir(session, "tr-chat", stage=Stage.PRODUCTION)
        info = registry.describe(registry.get_version(session, "tr-chat"))
    assert path.is_dir() and (path / "adapter_config.json").is_file()
    assert path != sft_run.adapter_dir.resolve()  # a registry-owned copy
    assert info["lineage"]["base_model"] == str(sft_run.base)
    assert info["lineage"]["tokenizer"] == "own-tok-v1"  # the caller's value wins
    assert info["lineage"]["mlflow_run_id"] == sft_run.run_id
    assert len(info["lineage"]["data_sha256"]) == 64
    assert info["lineage"]["adapter"]["r"] == 4
    assert info["lineage"]["adapter"]["tensors"] > 0
    assert info["metrics"]["ppl"] == 12.5 and "train_loss" in info["metrics"]
    meta = json.loads((path.parent / "meta.json").read_text())
    assert meta["lineage"]["base_model"] == str(sft_run.base)


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "adapter"
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("no_config", "no adapter_config.json"),
        ("no_weights", "no adapter weights"),
        ("bad_weights", "not a safetensors file"),
        ("no_base", "base model is not recorded"),
    ],
)
def test_bad_adapter_refused_without_writes(
    engine: Engine, sft_run: SftRun, tmp_path: Path, breakage: str, message: str
) -> None:
    folder = _copy(sft_run.adapter_dir, tmp_path)
    if breakage == "no_config":
        (folder / "adapter_config.json").unlink()
    elif breakage == "no_weights":
        (folder / "adapter_model.safetensors").unlink()
    elif breakage == "bad_weights":
        (folder / "adapter_model.safetensors").write_bytes(b"\xff" * 64)
    else:
        (folder / "paramstack.json").unlink()
        config = json.loads((folder / "adapter_config.json").read_text())
        config["base_model_name_or_path"] = None
        (folder / "adapter_config.json").write_text(json.dumps(config))
    with (
        pytest.raises(InvalidInput, match=message),
        transaction(session_factory(engine)) as session,
    ):
        registry.register(
            session, Registration(name="bad", artifact=folder, type="adapter"), tmp_path / "a"
        )
    assert not (tmp_path / "a").exists()


def test_adapter_dir_refuses_onnx_version(
    engine: Engine, digits_model: DigitsModel, tmp_path: Path
) -> None:
    with transaction(session_factory(engine)) as session:
        registry.register(
            session,
            Registration(name="digits", artifact=digits_model.onnx_path,
                         class_labels=[str(i) for i in range(10)]),
            tmp_path / "artifacts",
        )  # fmt: skip
        with pytest.raises(InvalidInput, match="not an adapter"):
            registry.adapter_artifact_dir(session, "digits")
