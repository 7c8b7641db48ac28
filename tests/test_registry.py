"""Registry CRUD, validation and stage transitions on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from paramstack.errors import Conflict, InvalidInput, NotFound
from paramstack.registry import abtests
from paramstack.registry import versions as registry
from paramstack.registry.versions import Registration
from paramstack.store import migrate
from paramstack.store.engine import session_factory, transaction
from paramstack.store.tables import Model, ModelVersion, Stage
from tests.conftest import DigitsModel


def reg(model: DigitsModel, **overrides: object) -> Registration:
    fields: dict[str, object] = {
        "name": "digits",
        "artifact": model.onnx_path,
        "domain": "vision",
        "class_labels": [str(i) for i in range(10)],
        "metrics": {"accuracy": 0.99},
        "lineage": {"data_hash": "abc", "training_run_id": "run-1"},
    }
    fields.update(overrides)
    return Registration(**fields)  # type: ignore[arg-type]


def count(engine: Engine, table: type[Model] | type[ModelVersion]) -> int:
    with session_factory(engine)() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_migrations_reach_head_and_roll_back(engine: Engine) -> None:
    assert migrate.current_revision(engine) == migrate.head_revision()
    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_register_records_hash_shapes_and_copy(
    engine: Engine, digits_model: DigitsModel, tmp_path: Path
) -> None:
    with transaction(session_factory(engine)) as session:
        v1 = registry.register(session, reg(digits_model), tmp_path / "artifacts")
        v2 = registry.register(session, reg(digits_model), tmp_path / "artifacts")
    expected = hashlib.sha256(digits_model.onnx_path.read_bytes()).hexdigest()
    assert (v1.version, v2.version) == (1, 2)
    assert v1.sha256 == expected
    assert v1.size_bytes == digits_model.onnx_path.stat().st_size
    assert v1.input_shape == [-1, 3, 32, 32]
    assert v1.output_shape == [-1, 10]
    assert v1.opset is not None and v1.opset >= 13
    assert v1.stage == Stage.REGISTERED
    stored = Path(v1.artifact_path)
    assert stored.is_file() and stored != digits_model.onnx_path.resolve()
    assert (stored.parent / "meta.json").is_file()
    with session_factory(engine)() as session:
        found = registry.get_version(session, "digits", 1)
        assert found.lineage == {"data_hash": "abc", "training_run_id": "run-1"}
        assert found.metrics["accuracy"] == 0.99
        assert [v.version for v in registry.list_models(session)[0].versions] == [1, 2]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x01 this is not a protobuf", "not a valid ONNX model"),
        (None, "not a valid ONNX model"),  # truncated copy of a real model
    ],
)
def test_broken_files_are_refused_and_nothing_written(
    engine: Engine,
    digits_model: DigitsModel,
    tmp_path: Path,
    content: bytes | None,
    message: str,
) -> None:
    broken = tmp_path / "broken.onnx"
    data = digits_model.onnx_path.read_bytes()
    broken.write_bytes(content if content is not None else data[: len(data) // 2])
    with (
        pytest.raises(InvalidInput, match=message),
        transaction(session_factory(engine)) as session,
    ):
        registry.register(session, reg(digits_model, artifact=broken), tmp_path / "a")
    assert count(engine, Model) == 0
    assert count(engine, ModelVersion) == 0


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"input_shape": [1, 3, 64, 64]}, "declared input shape"),
        ({"output_shape": [-1, 12]}, "declared output shape"),
        ({"class_labels": ["a", "b", "c"]}, "3 class labels"),
        ({"type": "pickle"}, "unknown model type"),
        ({"name": "bad name!"}, "invalid model name"),
        ({"artifact": Path("/nonexistent/model.onnx")}, "artifact not found"),
    ],
)
def test_mismatching_declarations_are_refused(
    engine: Engine,
    digits_model: DigitsModel,
    tmp_path: Path,
    overrides: dict[str, object],
    match: str,
) -> None:
    with pytest.raises(InvalidInput, match=match), transaction(session_factory(engine)) as s:
        registry.register(s, reg(digits_model, **overrides), tmp_path / "a")
    assert count(engine, ModelVersion) == 0


def test_stage_transitions(engine: Engine, digits_model: DigitsModel, tmp_path: Path) -> None:
    factory = session_factory(engine)
    with transaction(factory) as s:
        for _ in range(3):
            registry.register(s, reg(digits_model), tmp_path / "a")
    with transaction(factory) as s:
        registry.set_stage(s, "digits", 1, Stage.STAGING)
        registry.set_stage(s, "digits", 1, Stage.PRODUCTION)
    with transaction(factory) as s:
        changed = registry.set_stage(s, "digits", 2, Stage.PRODUCTION)
        assert {(v.version, v.stage) for v in changed} == {
            (2, Stage.PRODUCTION),
            (1, Stage.ARCHIVED),
        }
    with factory() as s:
        assert registry.get_version(s, "digits", stage=Stage.PRODUCTION).version == 2
        stages = {v.version: v.stage for v in registry.get_model(s, "digits").versions}
        assert stages == {1: Stage.ARCHIVED, 2: Stage.PRODUCTION, 3: Stage.REGISTERED}
    # archived cannot jump straight back to production; it goes through staging
    with (
        pytest.raises(Conflict, match="cannot move a archived version to production"),
        transaction(factory) as s,
    ):
        registry.set_stage(s, "digits", 1, Stage.PRODUCTION)
    with transaction(factory) as s:
        registry.set_stage(s, "digits", 1, Stage.STAGING)
        registry.set_stage(s, "digits", 3, Stage.ARCHIVED)
    with factory() as s:
        stages = {v.version: v.stage for v in registry.get_model(s, "digits").versions}
        assert stages == {1: Stage.STAGING, 2: Stage.PRODUCTION, 3: Stage.ARCHIVED}
    with pytest.raises(NotFound), factory() as s:
        registry.get_version(s, "digits", 9)
    with pytest.raises(NotFound), factory() as s:
        registry.get_model(s, "missing")


def test_abtest_rules(engine: Engine, digits_model: DigitsModel, tmp_path: Path) -> None:
    factory = session_factory(engine)
    with transaction(factory) as s:
        for _ in range(2):
            registry.register(s, reg(digits_model), tmp_path / "a")
        registry.set_stage(s, "digits", 1, Stage.PRODUCTION)
        registry.set_stage(s, "digits", 2, Stage.STAGING)
    for args, err in [
        ((1, 2, 0.0), InvalidInput),
        ((1, 2, 100.0), InvalidInput),
        ((1, 1, 50.0), InvalidInput),
        ((1, 7, 50.0), NotFound),
    ]:
        with pytest.raises(err), transaction(factory) as s:
            abtests.create(s, "t", "digits", *args)
    with transaction(factory) as s:
        abtests.create(s, "exp1", "digits", 1, 2, 25.0)
    with pytest.raises(Conflict, match="already running"), transaction(factory) as s:
        abtests.create(s, "exp2", "digits", 1, 2, 25.0)
    with pytest.raises(Conflict, match="stop it first"), transaction(factory) as s:
        registry.set_stage(s, "digits", 2, Stage.ARCHIVED)
    with transaction(factory) as s:
        stopped = abtests.stop(s, "exp1", winner="B")
        assert stopped.winner == "B"
        assert stopped.requests_a == 0 and stopped.stopped_at is not None
    with pytest.raises(Conflict, match="already stopped"), transaction(factory) as s:
        abtests.stop(s, "exp1")
