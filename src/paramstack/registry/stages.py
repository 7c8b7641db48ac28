"""Deployment stages and the transitions allowed between them.

registered → staging → production → archived, with two ways back that operators need: a
production version can be demoted to staging, and an archived one restored to staging (the
rollback path). Promoting a version to production archives the previous production version, so
exactly one version of a model serves by default.
"""

from __future__ import annotations

from paramstack.errors import Conflict
from paramstack.store.tables import Stage

ALLOWED: dict[Stage, frozenset[Stage]] = {
    Stage.REGISTERED: frozenset({Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED}),
    Stage.STAGING: frozenset({Stage.PRODUCTION, Stage.ARCHIVED}),
    Stage.PRODUCTION: frozenset({Stage.STAGING, Stage.ARCHIVED}),
    Stage.ARCHIVED: frozenset({Stage.STAGING}),
}


def check_transition(current: Stage, target: Stage) -> None:
    if target not in ALLOWED[current]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED[current])) or "none"
        raise Conflict(
            f"cannot move a {current.value} version to {target.value} (allowed: {allowed})",
            code="invalid_stage_transition",
        )
