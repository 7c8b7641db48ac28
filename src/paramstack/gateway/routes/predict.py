"""POST /v1/models/{name}/predict and its feedback route."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from paramstack.gateway.payload import read_payload
from paramstack.gateway.predictor import Predictor
from paramstack.gateway.schemas import (
    ErrorResponse,
    FeedbackRequest,
    PredictResponse,
)
from paramstack.store.tables import PredictionFeedback

router = APIRouter(tags=["predict"])

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "Invalid input (not an image, wrong shape, bad JSON)",
        404: "Unknown model or version",
        413: "Body larger than the limit (10 MB by default)",
        415: "Unsupported content type",
        503: "Not ready (model loading or log backlog)",
    }.items()
}

MULTIPART_SCHEMA = {
    "type": "object",
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "Image models."},
        "header": {"type": "string", "format": "binary", "description": "ECG: WFDB .hea"},
        "data": {"type": "string", "format": "binary", "description": "ECG: WFDB .dat"},
        "lead": {"type": "integer"},
        "user": {"type": "string", "minLength": 1, "maxLength": 128},
    },
    "oneOf": [{"required": ["file"]}, {"required": ["header", "data"]}],
}

PREDICT_JSON_SCHEMA = {
    "type": "object",
    "properties": {
        "image": {
            "type": "string",
            "description": "Base64 image (PNG, JPEG, WebP, GIF, BMP); a data: URL works too.",
        },
        "inputs": {
            "type": "array",
            "items": {},
            "description": "Alternative to image: an already preprocessed NCHW float tensor.",
        },
        "signal": {
            "type": "array",
            "items": {"type": "number"},
            "description": "ECG models: one lead in mV (with fs).",
        },
        "fs": {"type": "number", "description": "ECG models: sampling rate in Hz."},
        "lead": {"type": "integer", "description": "ECG WFDB uploads: which lead (default 0)."},
        "user": {
            "type": "string",
            "minLength": 1,
            "maxLength": 128,
            "description": "End-user id; makes the A/B arm sticky.",
        },
    },
    "oneOf": [{"required": ["image"]}, {"required": ["inputs"]}, {"required": ["signal", "fs"]}],
}

PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": PREDICT_JSON_SCHEMA},
            "multipart/form-data": {"schema": MULTIPART_SCHEMA},
        },
    }
}

ModelName = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")]


@router.post(
    "/v1/models/{name}/predict",
    response_model=PredictResponse,
    responses=ERRORS,
    openapi_extra=PREDICT_BODY,
    summary="Classify an image or an ECG strip with the model's serving version",
)
async def predict(
    request: Request,
    name: ModelName,
    version: Annotated[int | None, Query(ge=1, description="Pin a version")] = None,
    stage: Annotated[str | None, Query(description="production, staging or registered")] = None,
) -> Response:
    predictor: Predictor = request.app.state.predictor
    payload = await read_payload(request)
    state = request.scope["state"]
    body = await predictor.predict(
        name, payload, version=version, stage=stage, request_id=state["request_id"], t0=state["t0"]
    )
    headers = {"x-attestation-kid": body["attestation"]["kid"]} if "attestation" in body else None
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


@router.post(
    "/v1/predictions/{request_id}/feedback",
    status_code=202,
    responses={400: ERRORS[400], 503: ERRORS[503]},
    summary="Feed back the true label of an earlier prediction (daily accuracy)",
)
async def feedback(
    request: Request,
    request_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")],
    body: FeedbackRequest,
) -> dict[str, str]:
    predictor: Predictor = request.app.state.predictor
    predictor.logs.submit(
        PredictionFeedback,
        {"request_id": request_id, "label": body.label, "created_at": datetime.now(UTC)},
    )
    return {"status": "accepted", "request_id": request_id}
