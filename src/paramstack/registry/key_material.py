"""API key material: generation, parsing and peppered hashing. Pure functions, no storage.

A key reads ``psk_<12 base32 chars>_<43 url-safe chars>``. The first 16 characters are the
*prefix*: random (60 bits), unique, safe to show in lists and logs, and the lookup handle. The
rest is 256 random bits from ``secrets``. Only HMAC-SHA256(pepper, key) is stored: a leaked
database without the server-side pepper cannot be brute-forced offline, and the hash is a
fast keyed MAC (not a password KDF) because the key itself has full entropy.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from paramstack.errors import InvalidInput

KEY_TAG = "psk_"
PUBLIC_ID_CHARS = 12
PREFIX_LEN = len(KEY_TAG) + PUBLIC_ID_CHARS
SECRET_BYTES = 32
MIN_PEPPER_BYTES = 32
_SECRET_CHARS = 43  # len(token_urlsafe(32))
_BASE32 = frozenset("abcdefghijklmnopqrstuvwxyz234567")
_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class PepperSettings(Protocol):
    """The two settings fields the pepper comes from (``paramstack.config.Settings`` has them)."""

    @property
    def api_key_pepper(self) -> SecretStr | None: ...

    @property
    def home(self) -> Path: ...


@dataclass(frozen=True)
class Pepper:
    """The server-side HMAC key; its repr never shows the bytes, so it cannot end up in a log."""

    value: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.value) < MIN_PEPPER_BYTES:
            raise InvalidInput(f"the API key pepper must be at least {MIN_PEPPER_BYTES} bytes")

    def digest(self, key: str) -> bytes:
        return hmac.new(self.value, key.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: ``plaintext`` is shown to the user once and never stored."""

    prefix: str
    plaintext: str = field(repr=False)


def generate_key() -> NewKey:
    public_id = base64.b32encode(secrets.token_bytes(10)).decode().lower()[:PUBLIC_ID_CHARS]
    prefix = KEY_TAG + public_id
    return NewKey(prefix=prefix, plaintext=f"{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}")


def split_key(presented: str) -> str | None:
    """The prefix of a well-formed key, else None (checked before any lookup or hashing)."""
    if (
        len(presented) != PREFIX_LEN + 1 + _SECRET_CHARS
        or not presented.startswith(KEY_TAG)
        or presented[PREFIX_LEN] != "_"
        or not _BASE32.issuperset(presented[len(KEY_TAG) : PREFIX_LEN])
        or not _URLSAFE.issuperset(presented[PREFIX_LEN + 1 :])
    ):
        return None
    return presented[:PREFIX_LEN]


def resolve_pepper(cfg: PepperSettings) -> Pepper:
    """The configured pepper, or one generated once into ``<home>/secrets/api_key_pepper``.

    The file fallback keeps a fresh clone working with zero configuration. It is written to a
    private temporary file and hard-linked into place, so two processes starting together
    agree on one pepper and never read a half-written file. Losing the pepper invalidates every
    key, so production should set it explicitly.
    """
    if cfg.api_key_pepper is not None:
        return Pepper(cfg.api_key_pepper.get_secret_value().encode())
    path = cfg.home / "secrets" / "api_key_pepper"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_urlsafe(48).encode())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won the race: use its pepper
        finally:
            tmp.unlink()
    return Pepper(path.read_bytes().strip())
