"""Pure domain pieces: clock correction and keys."""

from __future__ import annotations

from service.domain.clock import correct_time
from service.domain.keys import hash_secret, new_secret_key, new_site_key, secret_matches, split_secret_key

DAY_MS = 86_400_000


def test_skew_is_removed() -> None:
    # Browser clock 10 minutes slow; the event happened 3 s before the batch was sent.
    received = 1_764_000_600_000
    sent = received - 600_000
    corrected = correct_time(sent - 3000, sent, received, DAY_MS)
    assert corrected.event_at == received - 3000
    assert corrected.skew_ms == -600_000
    assert corrected.flag is None


def test_event_after_its_batch_is_clamped() -> None:
    corrected = correct_time(2_000_000_010_000, 2_000_000_000_000, 2_000_000_000_500, DAY_MS)
    assert corrected.event_at == 2_000_000_000_500
    assert corrected.flag == "after_sent"


def test_small_jitter_is_tolerated_but_never_in_the_future() -> None:
    corrected = correct_time(2_000_000_000_400, 2_000_000_000_000, 2_000_000_000_000, DAY_MS)
    assert corrected.flag is None
    assert corrected.event_at == 2_000_000_000_000


def test_too_old_is_clamped_to_the_age_limit() -> None:
    corrected = correct_time(1_000_000_000_000, 2_000_000_000_000, 2_000_000_000_000, DAY_MS)
    assert corrected.event_at == 2_000_000_000_000 - DAY_MS
    assert corrected.flag == "too_old"


def test_secret_keys_round_trip() -> None:
    key = new_secret_key()
    parts = split_secret_key(key.plaintext)
    assert parts is not None
    key_id, secret = parts
    assert key_id == key.key_id
    assert secret_matches(secret, key.secret_hash)
    assert not secret_matches(secret + "x", key.secret_hash)
    assert key.secret_hash == hash_secret(secret)
    assert split_secret_key(new_site_key()) is None


def test_keys_are_unique() -> None:
    assert len({new_secret_key().plaintext for _ in range(100)}) == 100
    assert len({new_site_key() for _ in range(100)}) == 100
