"""The admin API's bearer token: compared as a SHA-256 digest in constant time, never logged.

The token comes from ``admin_token`` (hashed once at startup) or, better, ``admin_token_sha256``
(so the plaintext never sits in any config). With neither set the admin API is closed: every
call is the same 401, as is a missing or wrong token, so callers learn nothing by probing.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from paramstack.config import Settings
from paramstack.registry.key_ring import InvalidApiKey

admin_scheme = HTTPBearer(
    auto_error=False, scheme_name="AdminToken", description="The admin token (admin_token)."
)


def admin_digest(settings: Settings) -> bytes | None:
    """The digest to compare with; None closes the admin API."""
    if settings.admin_token_sha256 is not None:
        return bytes.fromhex(settings.admin_token_sha256)
    if settings.admin_token is not None:
        return hashlib.sha256(settings.admin_token.get_secret_value().encode()).digest()
    return None


async def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(admin_scheme)],
) -> str:
    """The caller is an administrator; returns the actor name written into histories."""
    expected: bytes | None = getattr(request.app.state, "admin_digest", None)
    presented = credentials.credentials if credentials is not None else ""
    digest = hashlib.sha256(presented.encode()).digest()
    # compare_digest on equal-length digests: the time taken says nothing about the token
    if expected is None or not presented or not hmac.compare_digest(digest, expected):
        raise InvalidApiKey("invalid or missing admin token", code="invalid_admin_token")
    return "admin-api"


AdminActor = Annotated[str, Depends(require_admin)]
