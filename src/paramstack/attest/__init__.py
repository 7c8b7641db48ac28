"""Provenance as a library: Ed25519 keys, signed envelopes, the hash-chained audit log.

Never imports ``paramstack.gateway``; a verifier needs only the public key set.
"""
