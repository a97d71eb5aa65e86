"""Rate limits on ingestion, per client IP and per site key, built on the `limits` library.

The counters live in each worker's memory: with N workers a client may get up to N times the limit, which is
the price of needing no shared store; the limits guard against floods, not for billing. The asyncio flavour of
the library's memory storage expires keys with a task on the event loop; the threaded one started a timer
thread every few milliseconds under load (seen in the ingestion benchmark's profile).

Fixed windows: a window opens at a client's first request and allows the limit until it ends, so a client may
send up to twice the limit in a short span across two windows. The sliding-window counter smooths that, but
cost about 13 us more per request in the thread that serves requests (two checks, measured in-process), the
largest single item of CallTrail's own work on a 1-event request (docs/benchmarks.md, session 4).
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import FixedWindowRateLimiter

from service import metrics
from service.http.errors import ApiError


class RateLimits:
    def __init__(self, per_ip: str, per_site: str) -> None:
        self._limiter = FixedWindowRateLimiter(MemoryStorage())
        self._per_ip = _items(per_ip)
        self._per_site = _items(per_site)

    async def check_ip(self, ip: str) -> None:
        await self._check(self._per_ip, "ip", ip)

    async def check_site(self, site_key: str) -> None:
        await self._check(self._per_site, "site", site_key)

    async def _check(self, items: list[RateLimitItem], limit: str, identity: str) -> None:
        for item in items:
            if not await self._limiter.hit(item, limit, identity):
                reset_at = (await self._limiter.get_window_stats(item, limit, identity)).reset_time
                retry_after = max(1, math.ceil(reset_at - time.time()))
                metrics.RATE_LIMITED.labels(limit).inc()
                raise ApiError(
                    429,
                    "rate_limited",
                    f"too many requests for this {limit} ({item}); retry after {retry_after} s",
                    headers={"Retry-After": str(retry_after)},
                )


def _items(spec: str) -> list[RateLimitItem]:
    return [] if spec == "off" else list(parse_many(spec))
