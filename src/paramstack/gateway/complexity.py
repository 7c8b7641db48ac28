"""How hard is a chat request? A cheap 0-100 score and a band, for the hybrid router.

No model on the request path: a weighted sum of a few signals that predict when a small local
model is not enough (long questions, medical or legal terms in Turkish or English,
"compare/analyse" requests, several questions, a long conversation). Each feature gives
``weight * min(1, value / full)``; the weights sum to 100, so the score is 0-100 and each
weight reads as "how many points this signal can add". Weights, saturation points, band
thresholds and term lists live in ``configs/gateway/complexity.yaml``, so tuning needs no
release. Terms are matched at word starts on ``guard.textnorm.fold`` text (Turkish-aware
folding), so a Turkish stem matches in any case, with or without its dotted/dotless i,
cedillas and breves (the YAML's comment has examples).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from paramstack.errors import InvalidInput
from paramstack.guard.textnorm import fold

DEFAULT_COMPLEXITY = Path(__file__).resolve().parents[3] / "configs" / "gateway" / "complexity.yaml"
Band = Literal["simple", "medium", "complex"]
FEATURES = ("words", "domain_terms", "analysis_terms", "questions", "messages", "context_tokens")
CHARS_PER_TOKEN = 4  # the usual estimate for BPE vocabularies; only used for a feature


class Feature(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weight: float = Field(ge=0, le=100)
    full: float = Field(gt=0, description="The value at which the feature gives its weight.")


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    medium: float = Field(gt=0, le=100)
    complex: float = Field(gt=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.medium >= self.complex:
            raise ValueError("thresholds.medium must be below thresholds.complex")
        return self


class Terms(BaseModel):
    model_config = ConfigDict(extra="forbid")

    medical: list[str] = Field(default_factory=list)
    legal: list[str] = Field(default_factory=list)
    analysis: list[str] = Field(default_factory=list)


class ComplexityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    thresholds: Thresholds
    words: Feature
    domain_terms: Feature
    analysis_terms: Feature
    questions: Feature
    messages: Feature
    context_tokens: Feature
    terms: Terms = Terms()

    @model_validator(mode="after")
    def _sum_to_100(self) -> ComplexityConfig:
        total = sum(getattr(self, name).weight for name in FEATURES)
        if not math.isclose(total, 100.0):
            raise ValueError(f"feature weights must sum to 100 (they sum to {total:g})")
        return self

    @classmethod
    def from_yaml(cls, path: Path | None = None) -> ComplexityConfig:
        source = path or DEFAULT_COMPLEXITY
        try:
            return cls.model_validate(yaml.safe_load(source.read_text(encoding="utf-8")) or {})
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            raise InvalidInput(
                f"cannot read the complexity config {source}: {exc}", code="bad_config"
            ) from exc


@dataclass(frozen=True, slots=True)
class Complexity:
    score: float
    band: Band
    features: dict[str, int]  # the raw values, for the routing record

    @property
    def context_tokens(self) -> int:
        return self.features["context_tokens"]


def _pattern(categories: dict[str, list[str]]) -> re.Pattern[str] | None:
    """One regex for every category (a named group each) of folded stems, anchored at word
    starts, longest stem first: one scan of the text instead of one per category (the scan is
    most of the classifier's cost). A word start counts for the first category that matches."""
    groups = []
    for name, terms in categories.items():
        stems = sorted({fold(t.strip()) for t in terms if t.strip()}, key=len, reverse=True)
        if stems:
            groups.append(f"(?P<{name}>" + "|".join(re.escape(s) for s in stems) + ")")
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(groups) + ")") if groups else None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: only text counts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


class ComplexityClassifier:
    def __init__(self, config: ComplexityConfig) -> None:
        self.config = config
        self._terms = _pattern(config.terms.model_dump())

    def _count(self, folded: str) -> dict[str, int]:
        counts = {"medical": 0, "legal": 0, "analysis": 0}
        if self._terms is not None:
            for match in self._terms.finditer(folded):
                counts[str(match.lastgroup)] += 1
        return counts

    def features(self, messages: list[dict[str, Any]]) -> dict[str, int]:
        user = "\n".join(_text(m.get("content")) for m in messages if m.get("role") == "user")
        terms = self._count(fold(user))
        everything = sum(len(_text(m.get("content"))) for m in messages)
        return {
            "words": len(user.split()),
            "medical_terms": terms["medical"],
            "legal_terms": terms["legal"],
            "analysis_terms": terms["analysis"],
            "questions": user.count("?") + user.count("\uff1f"),
            "messages": max(0, len(messages) - 1),
            "context_tokens": math.ceil(everything / CHARS_PER_TOKEN),
        }

    def band(self, score: float) -> Band:
        thresholds = self.config.thresholds
        if score >= thresholds.complex:
            return "complex"
        return "medium" if score >= thresholds.medium else "simple"

    def classify(self, messages: list[dict[str, Any]]) -> Complexity:
        found = self.features(messages)
        values = {
            **{name: found[name] for name in FEATURES if name in found},
            "domain_terms": found["medical_terms"] + found["legal_terms"],
        }
        score = 0.0
        for name in FEATURES:
            feature: Feature = getattr(self.config, name)
            score += feature.weight * min(1.0, values[name] / feature.full)
        score = round(score, 2)
        return Complexity(score, self.band(score), found)
