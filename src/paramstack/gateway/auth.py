"""The bearer-key dependency of the OpenAI routes: ``Authorization: Bearer <key>`` -> principal.

Authentication reads the in-memory ``KeyRing`` on ``app.state`` (rebuilt by the registry
refresh loop), so the request path does no database I/O. Every failure is the same 401 in
OpenAI's shape (``InvalidApiKey``), whatever the cause, so callers cannot probe for keys.
``HTTPBearer`` is used only so the OpenAPI schema documents the scheme; it never raises.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from paramstack.gateway.tracing import span
from paramstack.registry.key_ring import KeyRing, Principal

bearer_scheme = HTTPBearer(auto_error=False, description="A paramstack API key (psk_…).")


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    ring: KeyRing = request.app.state.key_ring
    with span("auth"):
        return ring.authenticate(credentials.credentials if credentials is not None else None)


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
