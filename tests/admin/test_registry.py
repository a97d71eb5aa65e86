"""Sites and keys on real databases."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine, select

from service.admin import registry
from service.admin.registry import RegistryError, normalize_origin
from service.storage.schema import api_keys


def test_add_and_list_sites(engine: Engine) -> None:
    site = registry.add_site(engine, "crm", ["https://CRM.example.com/", "http://localhost:8080"])
    assert site.site_key.startswith("cts_")
    assert site.origins == {"https://crm.example.com", "http://localhost:8080"}
    (listed,) = registry.list_sites(engine)
    assert listed == site


def test_site_names_are_unique(engine: Engine) -> None:
    registry.add_site(engine, "crm", ["https://a.example.com"])
    with pytest.raises(RegistryError, match="already exists"):
        registry.add_site(engine, "crm", ["https://b.example.com"])
    assert len(registry.list_sites(engine)) == 1


def test_site_needs_an_origin(engine: Engine) -> None:
    with pytest.raises(RegistryError, match="origin"):
        registry.add_site(engine, "crm", [])
    assert registry.list_sites(engine) == []


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://crm.example.com", "https://crm.example.com"),
        ("https://crm.example.com:443/", "https://crm.example.com"),
        ("http://LOCALHOST:8080", "http://localhost:8080"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_origin_normalization(given: str, expected: str) -> None:
    assert normalize_origin(given) == expected


@pytest.mark.parametrize(
    "bad", ["crm.example.com", "ftp://x.example.com", "https://x.example.com/path", "https://"]
)
def test_bad_origins_are_refused(bad: str) -> None:
    with pytest.raises(RegistryError):
        normalize_origin(bad)


def test_keys_authenticate_until_revoked(engine: Engine) -> None:
    created = registry.create_key(engine, "read", "ops")
    assert created.plaintext.startswith("ctk_")
    key = registry.authenticate_key(engine, created.plaintext)
    assert key is not None
    assert key.scope == "read"

    registry.revoke_key(engine, created.key.key_id)
    assert registry.authenticate_key(engine, created.plaintext) is None
    (listed,) = registry.list_keys(engine)
    assert listed.revoked_at is not None
    # Revoking again keeps the first revocation's time.
    assert registry.revoke_key(engine, created.key.key_id).revoked_at == listed.revoked_at


def test_sites_and_keys_keep_their_times_as_epoch_milliseconds(engine: Engine) -> None:
    before = time.time_ns() // 1_000_000
    site = registry.add_site(engine, "crm", ["https://crm.example.com"])
    key = registry.create_key(engine, "read").key
    key = registry.revoke_key(engine, key.key_id)
    after = time.time_ns() // 1_000_000
    assert key.revoked_at is not None
    assert before <= site.created_at <= key.created_at <= key.revoked_at <= after
    with engine.connect() as conn:
        stored = conn.execute(select(api_keys.c.created_at, api_keys.c.revoked_at)).one()
    assert tuple(stored) == (key.created_at, key.revoked_at)
    assert all(type(value) is int for value in stored)


def test_wrong_secret_or_malformed_key_fails(engine: Engine) -> None:
    created = registry.create_key(engine, "admin")
    tampered = created.plaintext[:-1] + ("A" if created.plaintext[-1] != "A" else "B")
    assert registry.authenticate_key(engine, tampered) is None
    assert registry.authenticate_key(engine, "ctk_nothing") is None
    assert registry.authenticate_key(engine, "") is None


def test_only_a_hash_of_the_secret_is_stored(engine: Engine) -> None:
    created = registry.create_key(engine, "read")
    secret = created.plaintext.split("_", 2)[2]
    with engine.connect() as conn:
        stored = [tuple(str(v) for v in r) for r in conn.execute(select(api_keys)).all()]
    assert not any(secret in value for r in stored for value in r)


def test_revoking_an_unknown_key_fails(engine: Engine) -> None:
    with pytest.raises(RegistryError, match="no key"):
        registry.revoke_key(engine, "000000000000")


def test_scope_must_be_known(engine: Engine) -> None:
    with pytest.raises(RegistryError, match="scope"):
        registry.create_key(engine, "write")
    assert registry.list_keys(engine) == []


@pytest.mark.parametrize(
    "bad", ["https://x.example.com:99999", "https://x.example.com:port", "http://a b.example"]
)
def test_malformed_origins_are_a_clean_error(bad: str) -> None:
    with pytest.raises(RegistryError):
        normalize_origin(bad)


def test_international_hosts_are_stored_as_browsers_send_them() -> None:
    assert normalize_origin("https://Bücher.example") == "https://xn--bcher-kva.example"
