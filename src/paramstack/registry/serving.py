"""A read-only snapshot of what the gateway may serve: every non-archived version and the
running A/B tests. The gateway reloads it periodically so its request path never hits the DB."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from paramstack.store.tables import ABStatus, ABTest, ModelVersion, Stage

DEFAULT_TASK = "image-classification"


@dataclass(frozen=True)
class ServedVersion:
    id: int
    name: str
    version: int
    type: str
    domain: str
    stage: Stage
    artifact_path: Path
    class_labels: tuple[str, ...]
    task: str
    serving: Mapping[str, Any]  # what the task needs to feed the model (from the lineage)


@dataclass(frozen=True)
class ActiveABTest:
    id: int
    name: str
    version_a: ServedVersion
    version_b: ServedVersion
    split_b_percent: float


@dataclass
class ModelEntry:
    versions: dict[int, ServedVersion] = field(default_factory=dict)
    abtest: ActiveABTest | None = None

    def newest_in(self, stage: Stage) -> ServedVersion | None:
        matching = [v for v in self.versions.values() if v.stage == stage]
        return max(matching, key=lambda v: v.version) if matching else None


def load_snapshot(session: Session) -> dict[str, ModelEntry]:
    versions = session.scalars(
        select(ModelVersion)
        .options(joinedload(ModelVersion.model))
        .where(ModelVersion.stage != Stage.ARCHIVED)
    ).all()
    entries: dict[str, ModelEntry] = {}
    by_id: dict[int, ServedVersion] = {}
    for v in versions:
        labels = tuple(str(label) for label in v.class_labels)
        served = ServedVersion(
            id=v.id,
            name=v.model.name,
            version=v.version,
            type=v.type,
            domain=v.model.domain,
            stage=v.stage,
            artifact_path=Path(v.artifact_path),
            class_labels=labels,
            task=str(v.lineage.get("task", DEFAULT_TASK)),
            serving={**v.lineage, "class_labels": list(labels)},
        )
        by_id[v.id] = served
        entries.setdefault(served.name, ModelEntry()).versions[v.version] = served
    for test in session.scalars(select(ABTest).where(ABTest.status == ABStatus.RUNNING)):
        a, b = by_id.get(test.version_a_id), by_id.get(test.version_b_id)
        if a is not None and b is not None:
            entries[a.name].abtest = ActiveABTest(test.id, test.name, a, b, test.split_b_percent)
    return entries
