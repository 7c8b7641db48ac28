"""Resolve a request to one model version: pinned version, stage, or an A/B arm.

The route table is an in-memory snapshot of the registry refreshed every few seconds, so a
promotion made with the CLI in another process reaches every gateway worker without a database
read on the request path.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from paramstack.errors import InvalidInput, NotFound
from paramstack.registry.serving import ActiveABTest, ModelEntry, ServedVersion
from paramstack.store.tables import Stage

SERVABLE_STAGES = {s.value: s for s in (Stage.PRODUCTION, Stage.STAGING, Stage.REGISTERED)}


@dataclass(frozen=True)
class Route:
    version: ServedVersion
    abtest: ActiveABTest | None = None
    arm: str | None = None


def sticky_share(test_id: int, user_id: str) -> float:
    """A user's fixed position in [0, 100) for a test: the same user always gets the same arm."""
    digest = hashlib.blake2b(f"{test_id}:{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 10_000 / 100


def choose_arm(test: ActiveABTest, user_id: str | None, rng: random.Random) -> str:
    share = sticky_share(test.id, user_id) if user_id else rng.random() * 100
    return "B" if share < test.split_b_percent else "A"


class RouteTable:
    def __init__(self, rng: random.Random | None = None) -> None:
        self._entries: dict[str, ModelEntry] = {}
        self._rng = rng or random.Random()
        self.loaded = False

    def replace(self, entries: dict[str, ModelEntry]) -> set[int]:
        """Swap in a new snapshot; returns the ids of every servable version."""
        self._entries = entries
        self.loaded = True
        return {v.id for e in entries.values() for v in e.versions.values()}

    def model_names(self) -> list[str]:
        return sorted(self._entries)

    def resolve(
        self,
        name: str,
        *,
        version: int | None = None,
        stage: str | None = None,
        user_id: str | None = None,
    ) -> Route:
        entry = self._entries.get(name)
        if entry is None:
            raise NotFound(
                f"model {name!r} is not registered or has no servable version",
                code="model_not_found",
                param="name",
            )
        if version is not None:
            served = entry.versions.get(version)
            if served is None:
                raise NotFound(
                    f"model {name!r} has no servable version {version}",
                    code="version_not_found",
                    param="version",
                )
            return Route(served)
        if stage is not None:
            wanted = SERVABLE_STAGES.get(stage)
            if wanted is None:
                raise InvalidInput(
                    f"stage must be one of {', '.join(SERVABLE_STAGES)}", param="stage"
                )
            served = entry.newest_in(wanted)
            if served is None:
                raise NotFound(
                    f"model {name!r} has no {stage} version",
                    code="version_not_found",
                    param="stage",
                )
            return Route(served)
        if entry.abtest is not None:
            arm = choose_arm(entry.abtest, user_id, self._rng)
            chosen = entry.abtest.version_b if arm == "B" else entry.abtest.version_a
            return Route(chosen, entry.abtest, arm)
        served = entry.newest_in(Stage.PRODUCTION)
        if served is None:
            raise NotFound(
                f"model {name!r} has no production version; promote one first",
                code="version_not_found",
            )
        return Route(served)
