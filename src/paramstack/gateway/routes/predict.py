"""POST /v1/models/{name}/predict and its feedback route."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from paramstack.errors import InvalidInput, UnsupportedMediaType
from paramstack.gateway.predict_input import PredictInput, check_user, from_json, from_upload
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
        "file": {"type": "string", "format": "binary"},
        "user": {"type": "string", "maxLength": 128},
    },
    "required": ["file"],
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
        "user": {
            "type": "string",
            "minLength": 1,
            "maxLength": 128,
            "description": "End-user id; makes the A/B arm sticky.",
        },
    },
    "oneOf": [{"required": ["image"]}, {"required": ["inputs"]}],
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


async def read_input(request: Request) -> PredictInput:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json":
        return from_json(await request.body())
    if media_type == "multipart/form-data":
        async with request.form(max_files=1, max_fields=4) as form:
            upload, user = form.get("file"), form.get("user")
            if not isinstance(upload, UploadFile):
                raise InvalidInput("multipart body needs a 'file' part", param="file")
            return from_upload(await upload.read(), upload.content_type, check_user(user))
    raise UnsupportedMediaType(
        f"content type {media_type or 'missing'!r}: send application/json or multipart/form-data"
    )


@router.post(
    "/v1/models/{name}/predict",
    response_model=PredictResponse,
    responses=ERRORS,
    openapi_extra=PREDICT_BODY,
    summary="Classify one image with the model's serving version",
)
async def predict(
    request: Request,
    name: ModelName,
    version: Annotated[int | None, Query(ge=1, description="Pin a version")] = None,
    stage: Annotated[str | None, Query(description="production, staging or registered")] = None,
) -> Response:
    predictor: Predictor = request.app.state.predictor
    data = await read_input(request)
    state = request.scope["state"]
    body = await predictor.predict(
        name, data, version=version, stage=stage, request_id=state["request_id"], t0=state["t0"]
    )
    return Response(orjson.dumps(body), media_type="application/json")


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
