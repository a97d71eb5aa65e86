"""The rate limits' counters (``WindowCounters``) under the library's fixed-window limiter."""

from __future__ import annotations

import pytest
from limits import parse
from limits.strategies import FixedWindowRateLimiter

from service.http.errors import ApiError
from service.ingest.ratelimit import RateLimits, WindowCounters


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_window_allows_its_limit_then_refuses_until_it_ends() -> None:
    clock = FakeClock()
    limiter = FixedWindowRateLimiter(WindowCounters(clock=clock))
    three_a_minute = parse("3/minute")
    assert [limiter.hit(three_a_minute, "ip", "10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit(three_a_minute, "ip", "10.0.0.2"), "another client has a window of its own"
    stats = limiter.get_window_stats(three_a_minute, "ip", "10.0.0.1")
    assert (stats.remaining, stats.reset_time) == (0, clock.now + 60)

    clock.now += 59
    assert not limiter.hit(three_a_minute, "ip", "10.0.0.1")
    clock.now += 1  # the window has ended: a new one opens at this request
    assert limiter.hit(three_a_minute, "ip", "10.0.0.1")
    stats = limiter.get_window_stats(three_a_minute, "ip", "10.0.0.1")
    assert (stats.remaining, stats.reset_time) == (2, clock.now + 60)


def test_ended_windows_are_swept_so_memory_follows_recent_clients() -> None:
    clock = FakeClock()
    counters = WindowCounters(sweep_every_s=60, clock=clock)  # the sweep's moments set apart from 1 s windows
    for n in range(1000):
        counters.incr(f"ip/10.0.{n // 256}.{n % 256}", expiry=1)
    counters.incr("site/long", expiry=3600)
    assert counters.size == 1001
    clock.now += 30
    counters.incr("ip/10.9.9.9", expiry=1)
    assert counters.size == 1002, "no sweep before its time"
    clock.now += 31
    counters.incr("ip/10.9.9.9", expiry=1)
    assert counters.size == 2, "the window still open and the one just opened"
    assert counters.get("site/long") == 1
    assert counters.get("ip/10.0.0.1") == 0


def test_reset_and_clear() -> None:
    counters = WindowCounters(clock=FakeClock())
    counters.incr("a", expiry=60, amount=5)
    counters.incr("b", expiry=60)
    counters.clear("a")
    assert (counters.get("a"), counters.get("b")) == (0, 1)
    assert counters.reset() == 1
    assert counters.size == 0


def test_rate_limits_answer_429_with_retry_after_and_can_be_off() -> None:
    clock = FakeClock()
    rate_limits = RateLimits("2/minute;100/hour", "off", WindowCounters(clock=clock))
    rate_limits.check_ip("10.0.0.1")
    clock.now += 15
    rate_limits.check_ip("10.0.0.1")
    with pytest.raises(ApiError) as refused:
        rate_limits.check_ip("10.0.0.1")
    assert (refused.value.status, refused.value.code) == (429, "rate_limited")
    assert refused.value.headers == {"Retry-After": "45"}, "until the minute's window ends"
    assert "ip (2 per 1 minute)" in refused.value.message
    for _ in range(1000):
        rate_limits.check_site("any")  # off: never refused
