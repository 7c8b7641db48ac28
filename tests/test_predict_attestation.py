"""Every prediction is signed; anyone with the public JWKS can verify it; the audit chain
records each signed response and ends with a signed checkpoint of its head."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select

from paramstack.attest.chain import verify_chain
from paramstack.attest.envelope import verify
from paramstack.attest.keys import KeyStore
from paramstack.attest.outputs import prediction_output
from paramstack.config import Settings
from paramstack.store.audit_tables import AuditCheckpoint, AuditEntry
from paramstack.store.engine import make_engine, session_factory
from paramstack.vision.digits import digit_images, digit_png_bytes
from tests.conftest import DigitsModel, LiveServer, register_digits

Server = Callable[[Settings], AbstractContextManager[LiveServer]]
PREDICT = "/v1/models/digits/predict"
PASSPHRASE = "correct horse battery staple"


def signed_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"attest_passphrase": SecretStr(PASSPHRASE)})


def body_for(index: int) -> dict[str, str]:
    images, _ = digit_images()
    return {"image": base64.b64encode(digit_png_bytes(images[index])).decode()}


def test_predictions_are_signed_verifiable_and_chained(
    settings: Settings, digits_model: DigitsModel, live_server: Server, tmp_path: Path
) -> None:
    cfg = signed_settings(settings)
    first_kid = KeyStore(cfg.resolved_attest_keys_dir, PASSPHRASE).rotate()
    register_digits(cfg, digits_model)
    with live_server(cfg) as server, server.client() as client:
        responses = [client.post(PREDICT, json=body_for(i)) for i in range(5)]
        jwks = client.get("/v1/attestations/keys").json()
        body = responses[0].json()
        remote = client.post(
            "/v1/attestations/verify",
            json={"attestation": body["attestation"], "output": prediction_output(body).decode()},
        ).json()
    assert [k["kid"] for k in jwks["keys"]] == [first_kid]
    assert all(r.headers["x-attestation-kid"] == first_kid for r in responses)
    assert remote == {"ok": True, "reason": "ok", "kid": first_kid}
    envelope = body["attestation"]["envelope"]
    assert envelope["input_sha256"] == body["metadata"]["input_hash"]
    assert envelope["model"] == "digits" and envelope["model_version"] == "1"
    assert envelope["request_id"] == responses[0].headers["x-request-id"]

    # verification needs nothing but the public key set
    assert verify(body["attestation"], prediction_output(body), jwks).ok
    tampered = {**body, "prediction": str((int(body["prediction"]) + 1) % 10)}
    assert (
        verify(body["attestation"], prediction_output(tampered), jwks).reason == "output_mismatch"
    )
    forged = copy.deepcopy(body["attestation"])
    forged["envelope"]["model_version"] = "2"
    assert verify(forged, prediction_output(body), jwks).reason == "bad_signature"
    bad_sig = {**body["attestation"], "signature": body["attestation"]["signature"][::-1]}
    assert not verify(bad_sig, prediction_output(body), jwks).ok

    engine = make_engine(cfg.resolved_database_url)
    with session_factory(engine)() as s:
        entries = list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
        checkpoints = list(s.scalars(select(AuditCheckpoint)))
        report = verify_chain(s, jwks)
    engine.dispose()
    assert [e.kind for e in entries] == ["attestation"] * 5
    assert {e.payload["envelope"]["request_id"] for e in entries} == {
        r.headers["x-request-id"] for r in responses
    }
    assert report.ok and report.entries == 5
    assert checkpoints[-1].seq == 5  # shutdown signs the head: a cut-off tail is detectable


def test_rotation_keeps_old_signatures_verifiable(
    settings: Settings, digits_model: DigitsModel, live_server: Server
) -> None:
    cfg = signed_settings(settings)
    store = KeyStore(cfg.resolved_attest_keys_dir, PASSPHRASE)
    old_kid = store.rotate()
    register_digits(cfg, digits_model)
    with live_server(cfg) as server, server.client() as client:
        old = client.post(PREDICT, json=body_for(1)).json()
    new_kid = store.rotate()
    with live_server(cfg) as server, server.client() as client:
        new = client.post(PREDICT, json=body_for(1)).json()
        jwks = client.get("/v1/attestations/keys").json()
    assert old["attestation"]["kid"] == old_kid and new["attestation"]["kid"] == new_kid
    assert {k["kid"] for k in jwks["keys"]} == {old_kid, new_kid}
    assert verify(old["attestation"], prediction_output(old), jwks).ok
    assert verify(new["attestation"], prediction_output(new), jwks).ok


def test_without_a_key_predictions_are_unsigned(
    settings: Settings, digits_model: DigitsModel, live_server: Server
) -> None:
    register_digits(settings, digits_model)
    with live_server(settings) as server, server.client() as client:
        response = client.post(PREDICT, json=body_for(2))
        keys = client.get("/v1/attestations/keys").json()
    assert response.status_code == 200
    assert "attestation" not in response.json()
    assert "x-attestation-kid" not in response.headers
    assert keys == {"keys": []}
