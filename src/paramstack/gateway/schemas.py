"""Request and response models of the predict API, as documented in the OpenAPI schema."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PredictJSONRequest(BaseModel):
    image: str | None = Field(
        None, description="Base64 image (PNG, JPEG, BMP, GIF, WebP, TIFF); a data: URL works too."
    )
    inputs: list[object] | None = Field(
        None, description="Alternative to image: an already preprocessed NCHW float tensor."
    )
    user: str | None = Field(
        None, max_length=128, description="End-user id; makes A/B assignment sticky."
    )


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


class PredictResponse(BaseModel):
    model: ModelInfo
    prediction: str
    confidence: float
    probabilities: dict[str, float]
    performance: Performance
    metadata: PredictMetadata


class FeedbackRequest(BaseModel):
    label: str = Field(..., min_length=1, max_length=128, description="The true class.")


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str | None
    param: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
