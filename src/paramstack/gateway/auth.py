"""The bearer-key dependency of the OpenAI routes: ``Authorization: Bearer <key>`` -> principal.

Authentication reads the in-memory ``KeyRing`` on ``app.state`` (rebuilt by the registry
refresh loop), so the request path does no database I/O. Every failure is the same 401 in
OpenAI's shape (``InvalidApiKey``), whatever the cause, so callers cannot probe for keys.
The dependency is an ``HTTPBearer`` subclass so the OpenAPI schema documents the scheme (as
``HTTPBearer``) while FastAPI solves one dependency per request instead of two nested ones
(measured: the nested pair was most of FastAPI's per-request dependency cost).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from paramstack.gateway.client_address import current_client
from paramstack.gateway.tracing import span
from paramstack.registry.key_ring import InvalidApiKey, KeyRing, Principal

log = logging.getLogger(__name__)


class BearerPrincipal(HTTPBearer):
    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        credentials = await super().__call__(request)  # None when absent or not Bearer
        ring: KeyRing = request.app.state.key_ring
        with span("auth"):
            return authenticated(ring, credentials.credentials if credentials is not None else None)


def authenticated(ring: KeyRing, presented: str | None) -> Principal:
    """``ring.authenticate``, with every refusal logged under the client's address (trusted
    proxies' X-Forwarded-For applied), never the key: what a fail2ban-style watcher needs."""
    try:
        return ring.authenticate(presented)
    except InvalidApiKey:
        log.warning("refused an API key from %s", current_client() or "an unknown address")
        raise


bearer_scheme = BearerPrincipal(
    auto_error=False, scheme_name="HTTPBearer", description="A paramstack API key (psk_…)."
)

CurrentPrincipal = Annotated[Principal, Depends(bearer_scheme)]
