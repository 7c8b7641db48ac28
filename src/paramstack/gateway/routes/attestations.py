"""The public key set that verifies signed responses, and a verification endpoint."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from paramstack.attest.envelope import verify
from paramstack.attest.keys import KeyStore
from paramstack.config import Settings
from paramstack.gateway.routes.predict import ERRORS

router = APIRouter(tags=["attestations"])


def key_store(request: Request) -> KeyStore:
    settings: Settings = request.app.state.settings
    return KeyStore(settings.resolved_attest_keys_dir, b"")  # public keys need no passphrase


class VerifyRequest(BaseModel):
    attestation: dict[str, Any]
    output: str | None = Field(
        None, description="The signed output (for predictions: RFC 8785 JSON of the answer)."
    )


class VerifyResponse(BaseModel):
    ok: bool
    reason: str
    kid: str | None


@router.get("/v1/attestations/keys", summary="JWKS (RFC 8037 OKP Ed25519), old keys included")
async def jwks(request: Request) -> dict[str, Any]:
    return key_store(request).jwks()


@router.post(
    "/v1/attestations/verify",
    response_model=VerifyResponse,
    responses={400: ERRORS[400]},
    summary="Check a signature (and the output digest when the output is given)",
)
async def verify_attestation(request: Request, body: VerifyRequest) -> VerifyResponse:
    result = verify(body.attestation, body.output, key_store(request).jwks())
    return VerifyResponse(ok=result.ok, reason=result.reason, kid=result.kid)
