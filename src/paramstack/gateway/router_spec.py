"""One entry of ``routers:`` in the models YAML: a virtual public model (e.g. ``auto``).

Only the shape lives here (``model_table`` parses it with the rest of the file); what the
router does with it is ``llm_router``. See ``docs/routing.md`` for an example.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from paramstack.gateway.complexity import Thresholds


class RouterSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, description="What clients send as model.")
    simple: str = Field(description="The model for simple requests (usually a local one).")
    medium: dict[str, float] = Field(
        min_length=1, description="Model -> weight: a split, sticky per user."
    )
    complex: str = Field(description="The model for complex requests (usually external).")
    local: str | None = Field(None, description="x-paramstack-route: local [simple].")
    external: str | None = Field(None, description="x-paramstack-route: external [complex].")
    fallback: list[str] | None = Field(
        None, description="Tried in order when the chosen model fails [external]."
    )
    complexity: Path | None = Field(
        None, description="Classifier YAML, relative to the models file [the shipped one]."
    )
    thresholds: Thresholds | None = Field(None, description="Overrides the YAML's bands.")
    owned_by: str = "paramstack"

    @model_validator(mode="after")
    def _positive_weights(self) -> RouterSpec:
        if any(weight <= 0 for weight in self.medium.values()):
            raise ValueError("medium split weights must be positive")
        return self

    @property
    def local_model(self) -> str:
        return self.local or self.simple

    @property
    def external_model(self) -> str:
        return self.external or self.complex

    @property
    def fallback_models(self) -> list[str]:
        return self.fallback if self.fallback is not None else [self.external_model]

    def targets(self) -> list[str]:
        """Every model this router may call, each once, in a stable order."""
        names = [self.simple, *self.medium, self.complex, self.local_model, self.external_model]
        return list(dict.fromkeys([*names, *self.fallback_models]))
