"""Signed attestation envelopes: what was answered, by which model, under which policy.

The envelope is a small JSON object (no text, only SHA-256 digests of input and output)
serialised with RFC 8785 (JCS) so that signer and verifier produce the same bytes in any
language; the Ed25519 signature covers those bytes. Verification needs only the public key
(or the JWKS) plus the output text: a changed output changes its digest, a changed envelope
changes the signed bytes, a changed signature fails Ed25519 — each is reported by name.

Library use, with nothing but the published key set::

    from paramstack.attest.envelope import verify
    report = verify(response["attestation"], output_text, jwks)
    assert report.ok, report.reason
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785

from paramstack.attest.keys import (
    SigningKey,
    b64url,
    b64url_decode,
    key_from_jwks,
    public_key_from_jwk,
    verify_raw,
)
from paramstack.errors import ParamstackError

ALG = "EdDSA"
ENVELOPE_VERSION = 1


def sha256_hex(data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def build_envelope(
    *,
    model: str,
    model_version: str | int,
    input_data: str | bytes,
    output_data: str | bytes,
    tenant: str,
    policy_version: str,
    kid: str,
    request_id: str | None = None,
    timestamp: datetime | None = None,
    input_sha256: str | None = None,
) -> dict[str, Any]:
    """The fields that get signed; digests only, so the envelope is safe to log and store.

    ``input_sha256`` skips re-hashing an input whose digest the caller already has."""
    ts = (timestamp or datetime.now(UTC)).astimezone(UTC)
    envelope: dict[str, Any] = {
        "v": ENVELOPE_VERSION,
        "model": model,
        "model_version": str(model_version),
        "input_sha256": input_sha256 or sha256_hex(input_data),
        "output_sha256": sha256_hex(output_data),
        "tenant": tenant,
        "policy_version": policy_version,
        "timestamp": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "kid": kid,
    }
    if request_id is not None:
        envelope["request_id"] = request_id
    return envelope


def sign_envelope(envelope: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    """``{"envelope", "alg", "kid", "signature"}``; the envelope's ``kid`` must be ``key``'s."""
    if envelope.get("kid") != key.kid:
        raise ValueError("envelope kid does not match the signing key")
    signature = key.sign(rfc8785.dumps(envelope))
    return {"envelope": envelope, "alg": ALG, "kid": key.kid, "signature": b64url(signature)}


def sign(
    key: SigningKey,
    *,
    model: str,
    model_version: str | int,
    input_data: str | bytes,
    output_data: str | bytes,
    tenant: str,
    policy_version: str,
    request_id: str | None = None,
    input_sha256: str | None = None,
) -> dict[str, Any]:
    """Build and sign in one call (what the gateway does per response)."""
    envelope = build_envelope(
        input_sha256=input_sha256,
        model=model,
        model_version=model_version,
        input_data=input_data,
        output_data=output_data,
        tenant=tenant,
        policy_version=policy_version,
        kid=key.kid,
        request_id=request_id,
    )
    return sign_envelope(envelope, key)


@dataclass(frozen=True)
class Verification:
    ok: bool
    reason: str  # "ok" | "bad_signature" | "output_mismatch" | "input_mismatch" | "malformed" …
    kid: str | None = None


def verify(
    attestation: dict[str, Any],
    output_data: str | bytes | None,
    keys: dict[str, Any],
    *,
    input_data: str | bytes | None = None,
) -> Verification:
    """Check the signature with a JWKS (``{"keys": [...]}``) or one public JWK, then digests.

    ``output_data=None`` checks the signature only (e.g. an audit row without the text).
    """
    try:
        envelope = attestation["envelope"]
        kid = str(attestation["kid"])
        signature = b64url_decode(str(attestation["signature"]))
        if attestation.get("alg") != ALG or envelope.get("kid") != kid:
            return Verification(False, "malformed", kid)
        public = key_from_jwks(keys, kid) if "keys" in keys else public_key_from_jwk(keys)
        signed = rfc8785.dumps(envelope)
    except (KeyError, TypeError, ValueError, AttributeError, rfc8785.CanonicalizationError):
        return Verification(False, "malformed")
    except ParamstackError as exc:
        return Verification(False, exc.code)
    if not verify_raw(public, signature, signed):
        return Verification(False, "bad_signature", kid)
    if output_data is not None and sha256_hex(output_data) != envelope.get("output_sha256"):
        return Verification(False, "output_mismatch", kid)
    if input_data is not None and sha256_hex(input_data) != envelope.get("input_sha256"):
        return Verification(False, "input_mismatch", kid)
    return Verification(True, "ok", kid)
