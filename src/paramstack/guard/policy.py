"""The guard policy: which checks run, on input and/or output, with what action and threshold.

A policy is YAML validated by these pydantic models (``extra="forbid"`` so a typo in a key is
an error, not a silently disabled check). Per-tenant overrides are partial dicts deep-merged
over a base policy with :meth:`Policy.with_overrides`; the merged policy gets its own version
string, which goes into every attestation envelope.
"""

from __future__ import annotations

import enum
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from paramstack.errors import InvalidInput

DEFAULT_POLICY = Path(__file__).resolve().parents[3] / "configs" / "policies" / "default.yaml"


class Action(enum.StrEnum):
    """What a finding does: rewrite the text, stop the request, flag it, or only record it."""

    MASK = "mask"
    BLOCK = "block"
    WARN = "warn"
    LOG = "log"
    OFF = "off"


class Direction(enum.StrEnum):
    INPUT = "input"
    OUTPUT = "output"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckPolicy(_Strict):
    input: Action = Action.OFF
    output: Action = Action.OFF

    def action(self, direction: Direction) -> Action:
        return self.input if direction is Direction.INPUT else self.output


NerEntity = Literal["PERSON", "LOCATION", "ORGANIZATION", "NRP"]
_NAMES_AND_PLACES: list[NerEntity] = ["PERSON", "LOCATION"]  # what no pattern can find


class PiiPolicy(CheckPolicy):
    input: Action = Action.MASK
    output: Action = Action.MASK
    entities: list[str] | None = Field(None, description="None = every built-in entity.")
    presidio: bool = Field(
        False, description="Add Presidio's NER (names, places) next to our finders; the extra."
    )
    presidio_model: str | None = Field(
        None,
        description="spaCy pipeline with an 'ner' component: package name or directory; "
        "None = a blank pipeline (finds nothing).",
    )
    presidio_entities: list[NerEntity] = Field(
        default_factory=lambda: _NAMES_AND_PLACES.copy(),
        min_length=1,
        description="Presidio entities taken from the NER; LOCATION is masked as [ADDRESS].",
    )


class InjectionPolicy(CheckPolicy):
    input: Action = Action.BLOCK
    threshold: float | None = Field(
        None, ge=0, le=1, description="Classifier score to flag; None = the model's calibrated one."
    )
    model_path: Path | None = Field(None, description="Default <home>/guard/injection_model.npz.")
    classifier: bool = Field(True, description="Use the trained classifier when it exists.")
    channels: bool = Field(
        False,
        description="Judge a pasted document apart from the task (guard/channels.py, with the "
        "document classifier injection_model.data.npz); false: the whole text as one.",
    )


class ToxicityPolicy(CheckPolicy):
    output: Action = Action.WARN
    threshold: float = Field(0.5, ge=0, le=1, description="Lexicon score (noisy-OR) to flag.")
    lexicon_paths: list[Path] = Field(default_factory=list)
    classifier: bool = Field(
        False, description="Add the trained classifier (guard train-toxicity); off by default."
    )
    classifier_threshold: float | None = Field(
        None, ge=0, le=1, description="Classifier score to flag; None = the model's calibrated."
    )
    model_path: Path | None = Field(None, description="Default <home>/guard/toxicity_model.npz.")


class CopyrightPolicy(CheckPolicy):
    output: Action = Action.BLOCK
    ngram: int = Field(8, ge=3, le=50, description="Words per shingle.")
    threshold: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Fraction of the output's shingles found in one protected work.",
    )
    min_shingles: int = Field(5, ge=1, description="Outputs shorter than this are never flagged.")
    corpus_dir: Path | None = Field(None, description="Default <home>/guard/protected.")


class DisclaimerPolicy(_Strict):
    enabled: bool = True
    domains: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="domain -> language -> text; empty = built-in texts."
    )


class Policy(_Strict):
    """The whole policy; ``version`` names it in logs and attestations."""

    version: str = "default-1"
    pii: PiiPolicy = PiiPolicy()
    injection: InjectionPolicy = InjectionPolicy()
    toxicity: ToxicityPolicy = ToxicityPolicy()
    copyright: CopyrightPolicy = CopyrightPolicy()
    disclaimers: DisclaimerPolicy = DisclaimerPolicy()
    verdict_cache: int = Field(
        4096,
        ge=0,
        description="Prompts whose verdicts are remembered (by digest, per tenant) so a "
        "resent system prompt or history is not scanned again; 0 = off.",
    )

    @classmethod
    def from_yaml(cls, path: Path | None = None) -> Policy:
        """Load ``path`` (default: ``configs/policies/default.yaml``); errors name the key.

        Without a path and without the repository's ``configs/`` (an installed wheel), the
        built-in defaults apply; they equal the shipped default file.
        """
        if path is None and not DEFAULT_POLICY.is_file():
            return cls()
        source = path or DEFAULT_POLICY
        try:
            data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInput(f"cannot read policy {source}: {exc}", code="bad_policy") from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        from pydantic import ValidationError

        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput(f"invalid policy: {exc}", code="bad_policy") from exc

    def with_overrides(self, overrides: dict[str, Any], *, tenant: str | None = None) -> Policy:
        """A tenant's partial policy merged over this one, with a derived version string."""
        merged = _deep_merge(self.model_dump(mode="json"), overrides)
        if "version" not in overrides:
            digest = hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()
            merged["version"] = f"{self.version}+{tenant or 'override'}.{digest[:8]}"
        return Policy.from_dict(merged)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
