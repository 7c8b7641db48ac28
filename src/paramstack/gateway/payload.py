"""Read a predict request body once, whatever the model: JSON object or multipart form.

The task of the resolved model decides what the fields mean; reading is shared so that the
end-user id (needed to pick a sticky A/B arm before the model is known) comes out first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request

from paramstack.errors import InvalidInput, UnsupportedMediaType

MAX_PARTS = 8


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str
    media_type: str | None


@dataclass(frozen=True)
class Payload:
    fields: dict[str, Any] = field(default_factory=dict)  # JSON members or form text fields
    files: dict[str, Upload] = field(default_factory=dict)
    user: str | None = None


def check_user(user: object) -> str | None:
    """End-user ids go to logs and A/B hashing: short printable text only."""
    if user is None:
        return None
    if not isinstance(user, str) or not 0 < len(user) <= 128 or not user.isprintable():
        raise InvalidInput("user must be 1-128 printable characters", param="user")
    return user


def parse_json(body: bytes) -> Payload:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"body is not valid JSON: {exc.msg}") from exc
    if not isinstance(doc, dict):
        raise InvalidInput("body must be a JSON object")
    return Payload(fields=doc, user=check_user(doc.get("user")))


async def read_payload(request: Request) -> Payload:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json":
        return parse_json(await request.body())
    if media_type == "multipart/form-data":
        async with request.form(max_files=MAX_PARTS, max_fields=MAX_PARTS) as form:
            fields: dict[str, Any] = {}
            files: dict[str, Upload] = {}
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files[key] = Upload(await value.read(), value.filename or key,
                                        value.content_type)  # fmt: skip
                else:
                    fields[key] = value
        return Payload(fields=fields, files=files, user=check_user(fields.get("user")))
    raise UnsupportedMediaType(
        f"content type {media_type or 'missing'!r}: send application/json or multipart/form-data"
    )
