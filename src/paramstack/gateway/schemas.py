"""Request and response models of the predict API, as documented in the OpenAPI schema."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ModelInfo(BaseModel):
    name: str
    version: int
    type: str
    domain: str
    stage: str


class Performance(BaseModel):
    preprocessing_ms: float
    inference_ms: float
    total_ms: float


class ABArm(BaseModel):
    name: str
    arm: str


class PredictMetadata(BaseModel):
    input_hash: str
    timestamp: str
    request_id: str
    cached: bool
    ab_test: ABArm | None = None


class BeatPrediction(BaseModel):
    time_s: float
    # "class" is a Python keyword: the JSON field keeps its name through the alias
    beat_class: str = Field(..., alias="class")
    probabilities: dict[str, float]


class PredictResponse(BaseModel):
    model: ModelInfo
    prediction: str = Field(..., description="Image: the class. ECG: the most frequent beat class.")
    confidence: float
    probabilities: dict[str, float]
    beats: list[BeatPrediction] | None = Field(None, description="ECG models: every beat.")
    summary: dict[str, object] | None = Field(
        None, description="ECG models: counts, heart rate, HRV, duration."
    )
    performance: Performance
    metadata: PredictMetadata
    attestation: dict[str, object] | None = Field(
        None,
        description="Ed25519 signature over the answer (see paramstack.attest.outputs); "
        "verify with GET /v1/attestations/keys.",
    )


class FeedbackRequest(BaseModel):
    label: str = Field(
        ..., min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$", description="The true class."
    )


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str | None
    param: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
