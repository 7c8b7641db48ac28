"""Attestation: sign/verify with only the public key, tamper detection, key rotation."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from paramstack.attest.envelope import sign, verify
from paramstack.attest.keys import KeyStore, b64url, b64url_decode, thumbprint
from paramstack.errors import InvalidInput

PASS = "correct horse battery staple"


def _attest(store: KeyStore, output: str = "Merhaba, cevap hazir.") -> dict[str, object]:
    return sign(
        store.active(),
        model="chat",
        model_version=3,
        input_data="soru",
        output_data=output,
        tenant="acme",
        policy_version="default-1",
        request_id="r1",
    )


def test_sign_verify_and_tamper(tmp_path: Path) -> None:
    store = KeyStore(tmp_path, PASS)
    kid = store.rotate()
    jwks = json.loads(json.dumps(store.jwks()))  # what a verifier downloads
    assert jwks["keys"][0]["kid"] == kid == thumbprint(jwks["keys"][0])
    assert jwks["keys"][0]["kty"] == "OKP" and jwks["keys"][0]["crv"] == "Ed25519"
    att = _attest(store)
    assert verify(att, "Merhaba, cevap hazir.", jwks, input_data="soru").ok
    assert verify(att, "Merhaba, cevap hazir!", jwks).reason == "output_mismatch"
    assert verify(att, "Merhaba, cevap hazir.", jwks, input_data="x").reason == ("input_mismatch")
    edited = copy.deepcopy(att)
    edited["envelope"]["tenant"] = "other"  # type: ignore[index]
    assert verify(edited, "Merhaba, cevap hazir.", jwks).reason == "bad_signature"
    sig = bytearray(b64url_decode(str(att["signature"])))
    sig[0] ^= 1
    forged = {**att, "signature": b64url(bytes(sig))}
    assert verify(forged, "Merhaba, cevap hazir.", jwks).reason == "bad_signature"
    assert verify({"envelope": {}}, "x", jwks).reason == "malformed"
    assert verify(att, "Merhaba, cevap hazir.", jwks["keys"][0]).ok  # one JWK is enough


def test_rotation_keeps_old_signatures_and_keys_are_encrypted(tmp_path: Path) -> None:
    store = KeyStore(tmp_path, PASS)
    old_kid = store.rotate()
    old = _attest(store, "eski")
    new_kid = store.rotate()
    new = _attest(store, "yeni")
    jwks = store.jwks()
    assert [k["kid"] for k in jwks["keys"]] == [new_kid, old_kid]
    assert verify(old, "eski", jwks).ok and verify(new, "yeni", jwks).ok
    assert old["kid"] == old_kid and new["kid"] == new_kid
    pem = (tmp_path / f"{new_kid}.pem").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in pem
    with pytest.raises(InvalidInput):
        KeyStore(tmp_path, "wrong passphrase").active()
    with pytest.raises(InvalidInput):
        KeyStore(tmp_path / "other", b"").rotate()
