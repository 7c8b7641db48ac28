"""Attestation throughput: signatures/s and verifications/s, with the cost split.

Reports, in one run and on the same 1 kB output: raw Ed25519 sign/verify of a fixed 300-byte
message, the hash-and-canonicalise part alone (two SHA-256 + RFC 8785), and the full
``sign``/``verify`` calls the gateway makes.
Run: ``.venv/bin/python bench/attest.py [--seconds 2]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import rfc8785

from paramstack.attest.envelope import build_envelope, sign, verify
from paramstack.attest.keys import KeyStore, verify_raw


def rate(fn: Callable[[], object], seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            fn()
        n += 100
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    store = KeyStore(Path(tempfile.mkdtemp()), "bench")
    store.rotate()
    key, jwks = store.active(), store.jwks()
    output, prompt = "y" * 1024, "x" * 512
    fields = dict(
        model="chat",
        model_version=1,
        input_data=prompt,
        output_data=output,
        tenant="acme",
        policy_version="default-1",
    )
    message = rfc8785.dumps(build_envelope(kid=key.kid, **fields))  # type: ignore[arg-type]
    signature = key.sign(message)
    att = sign(key, **fields)  # type: ignore[arg-type]
    results = {
        "raw_ed25519_sign_per_s": rate(lambda: key.sign(message), args.seconds),
        "raw_ed25519_verify_per_s": rate(
            lambda: verify_raw(key.public, signature, message), args.seconds
        ),
        "hash_and_canonicalise_per_s": rate(
            lambda: rfc8785.dumps(build_envelope(kid=key.kid, **fields)),  # type: ignore[arg-type]
            args.seconds,
        ),
        "full_sign_per_s": rate(lambda: sign(key, **fields), args.seconds),  # type: ignore[arg-type]
        "full_verify_per_s": rate(lambda: verify(att, output, jwks), args.seconds),
        "message_bytes": len(message),
        "output_bytes": len(output),
    }
    print(json.dumps({k: round(v, 1) for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
