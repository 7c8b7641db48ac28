"""API keys on SQLite and PostgreSQL: shown once, stored only as HMAC(pepper), authenticated from
a snapshot, refused when wrong, revoked, expired, rotated, or under another pepper."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, text

from paramstack.errors import Conflict, InvalidInput
from paramstack.registry import api_keys, tenants
from paramstack.registry.api_keys import KeySpec
from paramstack.registry.key_material import Pepper, generate_key, resolve_pepper, split_key
from paramstack.registry.key_ring import InvalidApiKey, KeyRing
from paramstack.registry.tenants import TenantSpec
from paramstack.store.engine import session_factory, transaction

PEPPER = Pepper(b"server-side pepper, 32+ bytes long!!")


def _ring(engine: Engine, pepper: Pepper = PEPPER, now: datetime | None = None) -> KeyRing:
    with session_factory(engine)() as s:
        return KeyRing.load(s, pepper, now)


def _setup(engine: Engine) -> None:
    with transaction(session_factory(engine)) as s:
        tenants.create_tenant(
            s, TenantSpec(id="acme", name="Acme", requests_per_minute=60, default_model="m1")
        )
        tenants.set_price(s, "acme", "m1", Decimal("0.5"), Decimal("1.5"))


def test_a_key_is_shown_once_and_stored_only_as_a_peppered_hmac(engine: Engine) -> None:
    _setup(engine)
    with transaction(session_factory(engine)) as s:
        created = api_keys.create_key(s, "acme", KeySpec(name="app", tokens_per_day=500), PEPPER)
        other = api_keys.create_key(s, "acme", KeySpec(), PEPPER)
    key = created.plaintext
    assert split_key(key) == created.row.prefix and key.startswith("psk_")
    secret = key[len(created.row.prefix) + 1 :]
    assert len(secret) == 43 and secret != other.plaintext[17:]  # 256 random bits each
    assert key not in repr(created) and "plaintext" not in repr(generate_key())
    with engine.connect() as conn:
        query = text("SELECT * FROM api_keys WHERE prefix = :p")
        stored = conn.execute(query, {"p": created.row.prefix}).one()
    assert bytes(stored.key_hash) == hmac.new(PEPPER.value, key.encode(), hashlib.sha256).digest()
    assert not any(secret in str(value) for value in stored)  # the secret is nowhere in the row
    info = api_keys.describe_key(created.row)
    assert "key_hash" not in info and key not in str(info)
    assert info["limits"]["tokens_per_day"] == 500


def test_the_key_ring_authenticates_and_refuses_everything_else(engine: Engine) -> None:
    _setup(engine)
    with transaction(session_factory(engine)) as s:
        created = api_keys.create_key(s, "acme", KeySpec(requests_per_second=3), PEPPER)
    ring = _ring(engine)
    principal = ring.authenticate(created.plaintext)
    assert (principal.tenant.id, principal.key_prefix) == ("acme", created.row.prefix)
    assert principal.requests_per_second == 3 and principal.tenant.requests_per_minute == 60
    price = principal.tenant.price("m1")
    assert price is not None and price.cost(1000, 2000) == Decimal("3.5")
    key = created.plaintext
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    for bad in (tampered, key + "x", key[:20], "", None, "Bearer " + key, "psk_" + "a" * 56):
        with pytest.raises(InvalidApiKey) as refused:
            ring.authenticate(bad)
        assert refused.value.http_status == 401 and refused.value.code == "invalid_api_key"
    with pytest.raises(InvalidApiKey):  # the same database under another pepper is useless
        _ring(engine, Pepper(b"another pepper, also 32+ bytes!!!!")).authenticate(key)

    with transaction(session_factory(engine)) as s:
        api_keys.revoke_key(s, created.row.prefix)
    assert ring.authenticate(key) is principal  # the old snapshot until the next refresh
    with pytest.raises(InvalidApiKey):
        _ring(engine).authenticate(key)


def test_expiry_is_checked_on_every_request_and_disabled_tenants_lose_access(
    engine: Engine,
) -> None:
    _setup(engine)
    soon = datetime.now(UTC) + timedelta(hours=1)
    with transaction(session_factory(engine)) as s:
        created = api_keys.create_key(s, "acme", KeySpec(expires_at=soon), PEPPER)
        with pytest.raises(InvalidInput):
            api_keys.create_key(s, "acme", KeySpec(expires_at=datetime(2000, 1, 1)), PEPPER)
    ring = _ring(engine)
    assert ring.authenticate(created.plaintext, now=soon.timestamp() - 1)
    with pytest.raises(InvalidApiKey):
        ring.authenticate(created.plaintext, now=soon.timestamp())
    with transaction(session_factory(engine)) as s:
        tenants.update_tenant(s, "acme", {"active": False})
        with pytest.raises(Conflict):
            api_keys.create_key(s, "acme", KeySpec(), PEPPER)
    assert len(_ring(engine)) == 0


def test_rotation_gives_a_new_key_and_ends_the_old_one_after_the_grace(engine: Engine) -> None:
    _setup(engine)
    with transaction(session_factory(engine)) as s:
        old = api_keys.create_key(s, "acme", KeySpec(name="ci", requests_per_minute=7), PEPPER)
        new = api_keys.rotate_key(s, old.row.prefix, PEPPER, grace=timedelta(hours=1))
        assert new.row.rotated_from_id == old.row.id and new.row.name == "ci"
        assert new.row.requests_per_minute == 7 and new.plaintext != old.plaintext
    ring = _ring(engine)
    assert ring.authenticate(old.plaintext).key_id == old.row.id
    assert ring.authenticate(new.plaintext).key_id == new.row.id
    later = time.time() + 3601
    with pytest.raises(InvalidApiKey):
        ring.authenticate(old.plaintext, now=later)
    assert ring.authenticate(new.plaintext, now=later)
    with transaction(session_factory(engine)) as s:
        third = api_keys.rotate_key(s, new.row.prefix, PEPPER)  # no grace: the old ends now
        with pytest.raises(Conflict):
            api_keys.rotate_key(s, new.row.prefix, PEPPER)
        assert [k.prefix for k in api_keys.list_keys(s, "acme")] == [
            old.row.prefix, new.row.prefix, third.row.prefix,
        ]  # fmt: skip
    ring = _ring(engine)
    with pytest.raises(InvalidApiKey):
        ring.authenticate(new.plaintext)
    assert ring.authenticate(third.plaintext)


class _Cfg:
    def __init__(self, home: Path, pepper: str | None = None) -> None:
        self.home = home
        self.api_key_pepper = SecretStr(pepper) if pepper is not None else None


def test_the_pepper_comes_from_settings_or_one_private_generated_file(tmp_path: Path) -> None:
    first = resolve_pepper(_Cfg(tmp_path))
    path = tmp_path / "secrets" / "api_key_pepper"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert resolve_pepper(_Cfg(tmp_path)) == first and len(first.value) >= 32
    assert first.value.decode() not in repr(first)
    configured = resolve_pepper(_Cfg(tmp_path, "x" * 40))
    assert configured.value == b"x" * 40
    with pytest.raises(InvalidInput, match="at least 32 bytes"):
        resolve_pepper(_Cfg(tmp_path, "short"))
