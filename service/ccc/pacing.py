"""The pace and the retries of CCC's API calls, kept apart from the SDK adapter and from the pull's walk.

- at most 20 requests in any second (``RequestPacer``; DescribeTelCdr's documented limit);
- ``RequestLimitExceeded*`` answered by exponential backoff with jitter (``RetryPolicy``), network errors
  retried a few times; the SDK's own ``StandardRetryer`` is not used: it keeps the first error and raises it
  even after a retry succeeded (tencentcloud-sdk-python-common 3.1.195, ``retry.py``);
- ``AuthFailure*`` (``CccAuthError``) and any other error raised at once.

``call_with_backoff`` makes one API call that way, counting every attempt into a ``PullStats`` (which the
pull, ccc/pull.py, also counts its pages and records into).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from service.ccc.sdk import CccApi, CccAuthError, CccError, CccNetworkError, CccThrottledError

log = logging.getLogger("calltrail.ccc")

REQUESTS_PER_S = 20  # DescribeTelCdr's documented limit
THROTTLED_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "RequestLimitExceeded.UinLimitExceeded",
        "RequestLimitExceeded.GlobalRegionUinLimitExceeded",
    }
)
NETWORK_CODES = frozenset({"ClientNetworkError", "ServerNetworkError"})


class RequestPacer:
    """At most ``limit`` requests in any ``period_s``, for one caller making one request at a time.

    A sliding log of the last ``limit`` requests' *ends*: a request may start once the one ``limit`` before
    it ended ``period_s`` ago. Since a request reaches the server before its answer comes back, the server
    then never sees more than ``limit`` arrivals within ``period_s``, whatever the network's delays. Chosen
    over the ``limits`` library, whose limiters answer "may I now?" rather than "how long must I wait?" and
    whose fixed windows allow twice the limit across a window's edge, and over a token bucket, which allows
    a full bucket plus its refill (40) within one second; this is a dozen lines and exact."""

    def __init__(
        self,
        limit: int = REQUESTS_PER_S,
        period_s: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or period_s <= 0:
            raise ValueError("a pacer needs a limit of at least 1 and a positive period")
        self.limit = limit
        self.period_s = period_s
        self._clock = clock
        self._sleep = sleep
        self._ends: deque[float] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Before a request: sleep until it may start."""
        with self._lock:
            if len(self._ends) == self.limit:
                delay = self._ends[0] + self.period_s - self._clock()
                if delay > 0:
                    self._sleep(delay)

    def done(self) -> None:
        """After the request, whatever its outcome."""
        with self._lock:
            self._ends.append(self._clock())


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: the n-th retry waits between half and all of
    ``min(cap_s, base_s * 2**n)``, so retries spread out without ever coming back at once."""

    throttled_attempts: int = 8
    network_attempts: int = 3
    base_s: float = 0.5
    cap_s: float = 16.0

    def delay_s(self, retry: int, rng: random.Random) -> float:
        ceiling = min(self.cap_s, self.base_s * 2.0**retry)
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass
class PullStats:
    """What a pull did; ``requests`` counts every attempt, retries included."""

    requests: int = 0
    pages: int = 0
    records: int = 0
    throttled: int = 0
    network_retries: int = 0


def call_with_backoff(
    api: CccApi,
    action: str,
    params: Mapping[str, object],
    *,
    pacer: RequestPacer,
    retry: RetryPolicy,
    rng: random.Random,
    stats: PullStats,
    sleep: Callable[[float], None],
) -> dict[str, object]:
    """The action's ``Response``: each attempt paced, throttling backed off up to ``retry.throttled_attempts``
    (then ``CccThrottledError``), network errors retried up to ``retry.network_attempts`` (then
    ``CccNetworkError``); ``CccAuthError`` and any other ``CccError`` raised at once."""
    throttled = network = 0
    while True:
        pacer.wait()
        stats.requests += 1
        try:
            return api.call(action, params)
        except CccAuthError:
            raise
        except CccError as error:
            failure = error
        finally:
            pacer.done()
        if failure.code in THROTTLED_CODES:
            throttled += 1
            stats.throttled += 1
            if throttled >= retry.throttled_attempts:
                raise CccThrottledError(failure.code, failure.message, failure.request_id)
            delay = retry.delay_s(throttled - 1, rng)
        elif failure.code in NETWORK_CODES:
            network += 1
            stats.network_retries += 1
            if network >= retry.network_attempts:
                raise CccNetworkError(failure.code, failure.message, failure.request_id)
            delay = retry.delay_s(network - 1, rng)
        else:
            raise failure
        log.warning("CCC %s answered %s; retrying in %.2f s", action, failure.code, delay)
        sleep(delay)
