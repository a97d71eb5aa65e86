"""Rate limits on ingestion, per client IP and per site key, and on CCC pushes, per CCC app (SdkAppId); built
on the `limits` library.

The counters live in each worker's memory: with N workers a client may get up to N times the limit, which is
the price of needing no shared store; the limits guard against floods, not for billing.

Fixed windows: a window opens at a client's first request and allows the limit until it ends, so a client may
send up to twice the limit in a short span across two windows. The sliding-window counter smooths that, but
cost about 13 us more per request in the thread that serves requests (two checks, measured in-process), the
largest single item of CallTrail's own work on a 1-event request (docs/benchmarks.md).

The limiter is the library's; the storage under it is ours (``WindowCounters``, through the library's
``Storage`` extension point). Both of the library's memory storages schedule an expiry sweep on every
increment (an asyncio task, or a timer thread, per request under load) and take a lock per key: on a 1-event
request that was 14 % of the event loop's CPU (docs/benchmarks.md). Every check here runs on the
event loop's thread, so the counters need no lock, and ended windows can be swept in passing, every few
seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from limits import RateLimitItem, parse_many
from limits.storage import Storage
from limits.strategies import FixedWindowRateLimiter

from service import telemetry
from service.http.errors import ApiError

# Often enough that a flood from many addresses holds little memory and each sweep is short (about 0.2 us a
# key), rarely enough to cost nothing per request.
SWEEP_EVERY_S = 5.0


class WindowCounters(Storage):
    """Fixed-window counters for the library's limiters, used from one thread only (the event loop's).

    A window is ``[count, ends_at]`` (``time.time()`` seconds, as the library's ``get_expiry`` expects). A
    window that has ended counts as absent; ended windows are dropped every ``sweep_every_s``, so memory holds
    the clients of windows still open plus those of the last few seconds. Built directly, not from a storage
    URI (no ``STORAGE_SCHEME``): its options are not strings."""

    def __init__(self, sweep_every_s: float = SWEEP_EVERY_S, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._windows: dict[str, list[float]] = {}
        self.clock = clock
        self._sweep_every_s = sweep_every_s
        self._next_sweep = clock() + sweep_every_s

    @property
    def base_exceptions(self) -> type[Exception]:
        return ValueError

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = self.clock()
        if now >= self._next_sweep:
            self._sweep(now)
        window = self._windows.get(key)
        if window is None or window[1] <= now:
            self._windows[key] = [amount, now + expiry]
            return amount
        window[0] += amount
        return int(window[0])

    def get(self, key: str) -> int:
        window = self._windows.get(key)
        return 0 if window is None or window[1] <= self.clock() else int(window[0])

    def get_expiry(self, key: str) -> float:
        window = self._windows.get(key)
        now = self.clock()
        return now if window is None or window[1] <= now else window[1]

    def check(self) -> bool:
        return True

    def reset(self) -> int:
        count = len(self._windows)
        self._windows.clear()
        return count

    def clear(self, key: str) -> None:
        self._windows.pop(key, None)

    @property
    def size(self) -> int:
        """How many windows are held, ended ones not swept yet included."""
        return len(self._windows)

    def _sweep(self, now: float) -> None:
        self._windows = {key: window for key, window in self._windows.items() if window[1] > now}
        self._next_sweep = now + self._sweep_every_s


class RateLimits:
    """The per-IP, per-site and per-CCC-app limits of one worker. Call it from the event loop's thread only.
    The three share the counters; their keys never meet (the library prefixes each with its limit's name)."""

    def __init__(
        self,
        per_ip: str,
        per_site: str,
        counters: WindowCounters | None = None,
        *,
        per_ccc_app: str = "off",
    ) -> None:
        self.counters = counters or WindowCounters()
        self._limiter = FixedWindowRateLimiter(self.counters)
        self._per_ip = _items(per_ip)
        self._per_site = _items(per_site)
        self._per_ccc_app = _items(per_ccc_app)

    def check_ip(self, ip: str) -> None:
        self._check(self._per_ip, "ip", ip)

    def check_site(self, site_key: str) -> None:
        self._check(self._per_site, "site", site_key)

    def ccc_app_wait(self, sdk_app_id: int) -> tuple[str, int] | None:
        """Charge one push to its CCC app: None within the limit, else the limit passed and the seconds
        until its window ends. It answers instead of raising: the push receiver answers in CCC's shape
        (service/http/ccc.py), not in the service's error shape."""
        return self._wait(self._per_ccc_app, "ccc_app", str(sdk_app_id))

    def _check(self, items: list[RateLimitItem], limit: str, identity: str) -> None:
        wait = self._wait(items, limit, identity)
        if wait is not None:
            item, retry_after = wait
            raise ApiError(
                429,
                "rate_limited",
                f"too many requests for this {limit} ({item}); retry after {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )

    def _wait(self, items: list[RateLimitItem], limit: str, identity: str) -> tuple[str, int] | None:
        for item in items:
            if not self._limiter.hit(item, limit, identity):
                reset_at = self._limiter.get_window_stats(item, limit, identity).reset_time
                telemetry.RATE_LIMITED.labels(limit).inc()
                return str(item), max(1, math.ceil(reset_at - self.counters.clock()))
        return None


def _items(spec: str) -> list[RateLimitItem]:
    return [] if spec == "off" else list(parse_many(spec))
