"""One-shot conversion of an old single-shard edge store into one shard per (tenant, collection).

The new layout is built beside the old one (``<store>/.migrating``) from the old shard's stored
points — ids, vectors and payloads copied as they are, so nothing is re-embedded — each
collection's count is checked against the old shard, and only then is it moved into place
(``layout.json`` last). The old shard is kept as ``legacy-shard`` for the operator to delete;
an interrupted run leaves the old store untouched and can simply be run again.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import qdrant_edge as qe

from paramstack.errors import Conflict, InvalidInput
from paramstack.rag.stores.edge import EdgeStore
from paramstack.rag.stores.protocol import CollectionInfo

BATCH = 1024


@dataclass
class MigrationReport:
    collections: dict[str, int] = field(default_factory=dict)
    orphans: int = 0

    @property
    def points(self) -> int:
        return sum(self.collections.values())


def _scope(tenant: str, collection: str) -> qe.Filter:
    return qe.Filter(
        must=[
            qe.FieldCondition("tenant", match=qe.MatchValue(tenant)),
            qe.FieldCondition("collection", match=qe.MatchValue(collection)),
        ]
    )


def migrate_store(
    path: str | Path, on_collection: Callable[[str, str, int], None] | None = None
) -> MigrationReport:
    """Convert the store at ``path``; refuses a path without an old-layout shard."""
    root = Path(path)
    old_dir = root / "shard"
    if not (old_dir / "edge_config.json").exists():
        raise InvalidInput(f"{root} holds no old single-shard RAG store", param="store")
    if (root / "tenants").exists():
        raise Conflict(f"{root} already has a tenants/ folder; move it away first")
    registry = root / "collections.json"
    meta: dict[str, dict[str, str | int]] = (
        json.loads(registry.read_text()) if registry.exists() else {}
    )
    staging = root / ".migrating"
    shutil.rmtree(staging, ignore_errors=True)
    old = qe.EdgeShard.load(str(old_dir))
    new = EdgeStore(staging, max_open=4)
    report = MigrationReport()
    try:
        for key, row in sorted(meta.items()):
            tenant, collection = key.split("/", 1)
            new.create_collection(
                tenant, collection, CollectionInfo(str(row["embedder"]), int(row["dim"]))
            )
            flt = _scope(tenant, collection)
            offset = None
            while True:
                recs, offset = old.scroll(
                    qe.ScrollRequest(
                        offset=offset, limit=BATCH, filter=flt, with_payload=True, with_vector=True
                    )
                )
                points = [qe.Point(r.id, r.vector, r.payload) for r in recs if r.vector is not None]
                if points:
                    new.upsert_points(tenant, collection, points)
                if offset is None:
                    break
            expected = int(old.count(qe.CountRequest(exact=True, filter=flt)))
            got = new.count(tenant, collection)
            if got != expected:
                raise Conflict(f"{key}: copied {got} points of {expected}; old store left as is")
            new.optimize_collection(tenant, collection)
            report.collections[key] = got
            if on_collection:
                on_collection(tenant, collection, got)
        total = int(old.count(qe.CountRequest(exact=True)))
        report.orphans = total - report.points
    finally:
        new.close()
        old.close()
    (staging / "tenants").mkdir(exist_ok=True)
    (staging / "tenants").rename(root / "tenants")
    old_dir.rename(root / "legacy-shard")
    if registry.exists():
        registry.rename(root / "legacy-collections.json")
    (staging / "layout.json").rename(root / "layout.json")
    shutil.rmtree(staging)
    return report
