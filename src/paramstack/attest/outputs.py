"""Which bytes of a prediction response the attestation covers.

The signature covers the answer — ``prediction``, ``confidence``, ``probabilities`` and, for
ECG strips, ``beats`` and ``summary`` — serialised with RFC 8785, not timings or request
metadata (those differ between a response and a replay of it). A verifier needs only this
function, the response body and the public key set::

    report = verify(body["attestation"], prediction_output(body), jwks)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import rfc8785

SIGNED_KEYS = ("prediction", "confidence", "probabilities", "beats", "summary")


def prediction_output(body: Mapping[str, Any]) -> bytes:
    return rfc8785.dumps({k: body[k] for k in SIGNED_KEYS if body.get(k) is not None})
