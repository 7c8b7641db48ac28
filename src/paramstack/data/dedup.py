"""Exact and near-duplicate removal.

Exact: a hash of the Turkish-lower-cased word sequence (punctuation and spacing ignored).
Near: MinHash signatures over word 5-gram shingles, computed by datasketch in the worker
processes, and a MinHash LSH index (datasketch) kept in the parent, which sees documents in
input order so the first copy is the one kept.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

from paramstack.data.normalise import dedup_key, words

NUM_PERM = 128
SEED = 1
SCHEME = "affine32"  # datasketch's default; the parent rebuilds sketches with the same one


def exact_hash(text: str) -> bytes:
    return hashlib.blake2b(dedup_key(text).encode(), digest_size=16).digest()


def shingles(text: str, size: int = 5) -> list[bytes]:
    tokens = words(text)
    if len(tokens) < size:
        return [" ".join(tokens).encode()]
    return [" ".join(tokens[i : i + size]).encode() for i in range(len(tokens) - size + 1)]


def signature(text: str, size: int = 5, num_perm: int = NUM_PERM) -> npt.NDArray[np.uint32]:
    """The MinHash hash values of ``text`` (a plain array, cheap to send between processes)."""
    from datasketch import MinHash

    mh = MinHash(num_perm=num_perm, seed=SEED, scheme=SCHEME)
    mh.update_batch(shingles(text, size))
    return np.asarray(mh.hashvalues, dtype=np.uint32)


class Deduplicator:
    """Remembers what it kept; :meth:`check` says whether a new document duplicates one."""

    def __init__(self, threshold: float = 0.8, num_perm: int = NUM_PERM) -> None:
        from datasketch import MinHashLSH

        self.num_perm = num_perm
        self._exact: set[bytes] = set()
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._count = 0

    def check(self, key: bytes, hashvalues: npt.NDArray[np.uint32]) -> str | None:
        """``"exact_duplicate"``, ``"near_duplicate"`` or ``None`` (then it is remembered)."""
        from datasketch import LeanMinHash

        if key in self._exact:
            return "exact_duplicate"
        mh = LeanMinHash(seed=SEED, hashvalues=hashvalues, scheme=SCHEME)
        if self._lsh.query(mh):
            return "near_duplicate"
        self._exact.add(key)
        self._lsh.insert(str(self._count), mh)
        self._count += 1
        return None
