"""Browser clocks are wrong: correct event times by the skew each batch reveals.

Segment's rule: the browser says it sent the batch at ``sent_at`` and we received it at ``received_at``, so
its clock is off by ``sent_at - received_at`` (transit time is counted as skew), and an event stamped ``ts``
happened at ``received_at - (sent_at - ts)`` by our clock.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

# An event stamped later than the batch that carries it cannot be; a little slack absorbs timer jitter.
AFTER_SENT_TOLERANCE_MS = 1_000

TimeFlag = Literal["after_sent", "too_old"]


class CorrectedTime(NamedTuple):  # one per event on the ingestion hot path: a tuple builds fastest
    event_at: int
    skew_ms: int
    flag: TimeFlag | None


def correct_time(ts: int, sent_at: int, received_at: int, max_age_ms: int) -> CorrectedTime:
    skew = sent_at - received_at
    age = sent_at - ts
    if age < -AFTER_SENT_TOLERANCE_MS:
        return CorrectedTime(received_at, skew, "after_sent")
    if age > max_age_ms:
        return CorrectedTime(received_at - max_age_ms, skew, "too_old")
    return CorrectedTime(min(received_at - age, received_at), skew, None)
