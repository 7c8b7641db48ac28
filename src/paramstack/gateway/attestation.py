"""Sign every prediction with the active Ed25519 key and queue its audit-chain entry.

Signing costs ~50 µs; the audit entry goes through the batched log writer, whose single
thread is the one writer the hash chain needs.
"""

from __future__ import annotations

import logging
from typing import Any

from paramstack.attest.chain import AuditChain
from paramstack.attest.envelope import sign
from paramstack.attest.keys import KeyStore, SigningKey
from paramstack.attest.outputs import prediction_output
from paramstack.config import Settings
from paramstack.errors import GuardBlocked, ParamstackError
from paramstack.gateway.client_address import current_client
from paramstack.gateway.log_writer import LogWriter
from paramstack.store.audit_tables import AuditEntry

log = logging.getLogger(__name__)

PREDICT_POLICY = "none"  # predict routes run no text guard policy (inputs are images/signals)


class Attestor:
    def __init__(self, key: SigningKey, logs: LogWriter) -> None:
        self.key = key
        self.logs = logs

    def sign(
        self,
        *,
        model: str,
        version: str | int,
        input_sha256: str,
        output: bytes,
        tenant: str | None,
        policy_version: str,
        request_id: str,
    ) -> dict[str, Any]:
        """Sign one response and queue its audit-chain entry."""
        attestation = sign(
            self.key,
            model=model,
            model_version=version,
            input_data=b"",
            input_sha256=input_sha256,
            output_data=output,
            tenant=tenant or "-",
            policy_version=policy_version,
            request_id=request_id,
        )
        self.logs.submit(
            AuditEntry,
            {"kind": "attestation", "payload": attestation, "tenant": tenant},
        )
        return attestation

    def sign_prediction(
        self, body: dict[str, Any], *, input_sha256: str, tenant: str | None, request_id: str
    ) -> dict[str, Any]:
        model = body["model"]
        return self.sign(
            model=model["name"],
            version=model["version"],
            input_sha256=input_sha256,
            output=prediction_output(body),
            tenant=tenant,
            policy_version=PREDICT_POLICY,
            request_id=request_id,
        )


def audit_block(logs: LogWriter, exc: GuardBlocked, *, tenant: str | None, request_id: str) -> None:
    """A refused request enters the audit chain too (signed or not): which rule and from which
    address (trusted proxies' X-Forwarded-For applied), never the text."""
    payload = {
        "request_id": request_id,
        "client": current_client(),
        "check": exc.check,
        "rule": exc.rule,
        "direction": exc.direction,
        "policy_version": exc.policy_version,
    }
    logs.submit(AuditEntry, {"kind": "guard_block", "payload": payload, "tenant": tenant})


def load_key(settings: Settings) -> SigningKey | None:
    """The active signing key, or None (signing off) with the reason logged once."""
    if not settings.attest:
        return None
    store = KeyStore(settings.resolved_attest_keys_dir, settings.resolved_attest_passphrase())
    try:
        return store.active()
    except ParamstackError as exc:
        log.warning("attestation is off: %s", exc.message)
        return None


def audit_chain(settings: Settings, key: SigningKey | None) -> AuditChain:
    return AuditChain(
        key, every=settings.audit_checkpoint_every, seconds=settings.audit_checkpoint_seconds
    )
