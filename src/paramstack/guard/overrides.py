"""Per-tenant guard policy overrides: parse, validate, store canonically, merge.

An override is a partial policy document (e.g. ``{"pii": {"input": "log"}}``) deep-merged over
the gateway's base policy by :meth:`Policy.with_overrides`. It is stored as canonical JSON
(sorted keys, no spaces) so one document always has one digest: the gateway caches the built
guard per (tenant, digest), and the merged version string is derived from the same bytes.
Validation happens before storage and covers what :class:`~paramstack.guard.engine.Guard`
would refuse at build time (unknown keys, bad values, an action a check does not allow), so a
stored override can never make the gateway fail to build a tenant's guard.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from paramstack.errors import InvalidInput
from paramstack.guard.checks import CHECKS
from paramstack.guard.policy import Action, Policy


def load_override(path: Path) -> dict[str, Any]:
    """A YAML (or JSON) file holding one mapping; anything else is a clear error."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(f"cannot read policy override {path}: {exc}", code="bad_policy") from exc
    return as_mapping(data)


def as_mapping(data: object) -> dict[str, Any]:
    if not isinstance(data, dict) or not data:
        raise InvalidInput(
            "a policy override must be a non-empty mapping such as {pii: {input: log}}",
            code="bad_policy",
        )
    return data


def canonical(override: Mapping[str, Any]) -> str:
    """The stored form: equal documents give equal text (and digest)."""
    return json.dumps(override, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def merge(base: Policy, override: Mapping[str, Any] | None, tenant: str) -> Policy:
    """``base`` with the tenant's override, validated as the guard engine would validate it."""
    if not override:
        return base
    merged = base.with_overrides(dict(override), tenant=tenant)
    for name, factory in CHECKS.items():
        allowed: frozenset[Action] = getattr(factory, "allowed", frozenset(Action))
        cfg = getattr(merged, name)
        for action in (cfg.input, cfg.output):
            if action not in allowed:
                raise InvalidInput(
                    f"policy override for {tenant!r}: action {action.value!r} is not valid for "
                    f"{name}; valid: {sorted(a.value for a in allowed)}",
                    code="bad_policy",
                )
    if merged.pii.presidio:  # a missing extra or spaCy pipeline, refused before storage
        from paramstack.guard.pii_ner import ensure_available

        ensure_available(merged.pii.presidio_model)
    return merged
