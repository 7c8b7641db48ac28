"""Ed25519 signing keys: generation, rotation, encryption at rest, JWKS export.

* The key id is the RFC 7638 thumbprint of the public JWK (RFC 8037 ``OKP``/``Ed25519``):
  base64url(SHA-256 of ``{"crv","kty","x"}`` in canonical form), so anyone holding the public
  key can recompute it — no registry needed to match a signature to its key.
* Private keys are PKCS#8 PEM encrypted with the passphrase (``BestAvailableEncryption``, i.e.
  scrypt-derived AES-256-CBC in cryptography 48); the passphrase comes from the caller (CLI
  and gateway read ``PARAMSTACK_ATTEST_PASSPHRASE``), never from a file beside the key.
* Rotation writes a new active key and keeps every old public key in ``keys.json``, so old
  signatures stay verifiable and the JWKS lists all of them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from paramstack.errors import InvalidInput, NotFound

PASSPHRASE_ENV = "PARAMSTACK_ATTEST_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_jwk(public: Ed25519PublicKey) -> dict[str, str]:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    jwk["kid"] = thumbprint(jwk)
    jwk["alg"] = "EdDSA"
    jwk["use"] = "sig"
    return jwk


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, no whitespace (RFC 8037 §2)."""
    required = {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return b64url(hashlib.sha256(canonical).digest())


def public_key_from_jwk(jwk: dict[str, Any]) -> Ed25519PublicKey:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise InvalidInput("not an Ed25519 OKP key", code="bad_key")
    return Ed25519PublicKey.from_public_bytes(b64url_decode(str(jwk["x"])))


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def verify_raw(public: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public.verify(signature, data)
    except InvalidSignature:
        return False
    return True


class KeyStore:
    """A folder: ``<kid>.pem`` (encrypted private keys), ``keys.json`` (public JWKs, active)."""

    def __init__(self, folder: Path, passphrase: str | bytes | None = None) -> None:
        self.folder = folder
        raw = passphrase if passphrase is not None else os.environ.get(PASSPHRASE_ENV)
        self._passphrase = raw.encode() if isinstance(raw, str) else raw

    @property
    def _index_path(self) -> Path:
        return self.folder / "keys.json"

    def _index(self) -> dict[str, Any]:
        if not self._index_path.is_file():
            return {"active": None, "keys": []}
        data: dict[str, Any] = json.loads(self._index_path.read_text())
        return data

    def rotate(self) -> str:
        """Create a new active key; earlier keys stay for verification. Returns the new kid."""
        if not self._passphrase:
            raise InvalidInput(
                f"set {PASSPHRASE_ENV} to encrypt the attestation key at rest",
                code="missing_passphrase",
            )
        private = Ed25519PrivateKey.generate()
        jwk = public_jwk(private.public_key())
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._passphrase),
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{jwk['kid']}.pem"
        path.write_bytes(pem)
        path.chmod(0o600)
        index = self._index()
        now = datetime.now(UTC).isoformat()
        for entry in index["keys"]:
            if entry["kid"] == index["active"]:
                entry["retired_at"] = now
        index["keys"].append({**jwk, "created_at": now})
        index["active"] = jwk["kid"]
        tmp = self._index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(index, indent=2))
        tmp.replace(self._index_path)
        return jwk["kid"]

    def active(self) -> SigningKey:
        """The current signing key, decrypted with the passphrase."""
        kid = self._index()["active"]
        if kid is None:
            raise NotFound(
                "no attestation key: run `paramstack keys attest-rotate`", code="no_attest_key"
            )
        try:
            private = serialization.load_pem_private_key(
                (self.folder / f"{kid}.pem").read_bytes(), password=self._passphrase
            )
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                "cannot decrypt the attestation key (wrong passphrase?)", code="bad_passphrase"
            ) from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise InvalidInput(f"key {kid} is not Ed25519", code="bad_key")
        return SigningKey(kid, private)

    def jwks(self) -> dict[str, Any]:
        """RFC 7517 key set of every public key, newest first (what verifiers fetch)."""
        fields = ("kty", "crv", "x", "kid", "alg", "use")
        keys = [{k: e[k] for k in fields} for e in reversed(self._index()["keys"])]
        return {"keys": keys}


def key_from_jwks(jwks: dict[str, Any], kid: str) -> Ed25519PublicKey:
    for jwk in jwks.get("keys", []):
        if jwk.get("kid") == kid:
            if thumbprint(jwk) != kid:
                raise InvalidInput(f"key {kid}: thumbprint mismatch", code="bad_key")
            return public_key_from_jwk(jwk)
    raise NotFound(f"key {kid} is not in the key set", code="unknown_key")
