"""Supervisor metrics, as docs/metrics.md defines them: pure functions over session facts, no I/O.

Durations are kept in histograms with fixed bins, so that partial results (a rollup per quarter hour, a
slice of raw sessions) add up to exactly what one pass over all sessions would give. Counts, sums, means and
maxima are exact; percentiles are *nearest-rank percentiles rounded up to the bin's upper bound* (whole
seconds up to 10 minutes), and service-level and short-abandon thresholds are whole seconds up to 10 minutes,
where a bin boundary makes them exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from service.domain.ccc import CHANNELS, CHAT_CHANNELS
from service.domain.histograms import (
    HIST_KINDS,
    Histogram,
    SparseHistograms,
    add_to,
    round_seconds,
)


@dataclass
class Verdicts:
    """How many sessions were offered, answered and not answered, and how many have a measured talk time: the
    one place that says which session counts as what (docs/metrics.md)."""

    offered: int = 0
    answered: int = 0
    not_answered: int = 0
    talk_count: int = 0

    def count(self, fact: SessionFact) -> bool:
        """Count the session; False when it is not an offer a report counts (then nothing else may use it)."""
        if not fact.counts_as_offered:
            return False
        self.offered += 1
        if fact.connected:
            self.answered += 1
            self.talk_count += fact.talk_s is not None
        elif fact.outcome == "not_answered":
            self.not_answered += 1
        return True

    def add_counts(self, other: Verdicts) -> None:
        self.offered += other.offered
        self.answered += other.answered
        self.not_answered += other.not_answered
        self.talk_count += other.talk_count


@dataclass
class InboundPartial(Verdicts):
    """What inbound metrics need of a set of sessions; two partials add up like the union of their sets."""

    ring_sum: float = 0.0
    ring_max: float | None = None
    talk_sum: float = 0.0
    talk_max: float | None = None
    ring: Histogram = field(default_factory=dict)
    talk: Histogram = field(default_factory=dict)
    abandon: Histogram = field(default_factory=dict)

    def merge(self, other: InboundPartial) -> None:
        self.add_counts(other)
        self.ring_sum += other.ring_sum
        self.talk_sum += other.talk_sum
        if other.ring_max is not None:
            self.ring_max = _max(self.ring_max, other.ring_max)
        if other.talk_max is not None:
            self.talk_max = _max(self.talk_max, other.talk_max)
        for mine, theirs in ((self.ring, other.ring), (self.talk, other.talk), (self.abandon, other.abandon)):
            for index, count in theirs.items():
                mine[index] = mine.get(index, 0) + count

    def add_session(self, fact: SessionFact) -> None:
        if not self.count(fact):
            return
        if fact.connected and fact.ring_s is not None:
            self.ring_sum += fact.ring_s
            self.ring_max = _max(self.ring_max, fact.ring_s)
            add_to(self.ring, fact.ring_s)
        if fact.connected and fact.talk_s is not None:
            self.talk_sum += fact.talk_s
            self.talk_max = _max(self.talk_max, fact.talk_s)
            add_to(self.talk, fact.talk_s)
        if fact.outcome == "not_answered" and not fact.connected and fact.abandon_s is not None:
            add_to(self.abandon, fact.abandon_s)


@dataclass(frozen=True)
class SessionFact:
    """The columns of a session that metrics read."""

    channel: str | None
    observed_from: int
    connected: bool
    outcome: str
    ring_s: float | None
    talk_s: float | None
    abandon_s: float | None  # ended - offered, for a session never answered

    @property
    def counts_as_offered(self) -> bool:
        # Only sessions seen from their offer: one joined mid-call has no honest ring time or answer verdict.
        return self.observed_from == 100 and self.channel in CHANNELS


def _max(current: float | None, value: float) -> float:
    return value if current is None or value > current else current


@dataclass(frozen=True)
class Thresholds:
    service_level_s: int
    short_abandon_s: int


class InboundAccumulator:
    """Sums partials into numbered buckets (and the totals).

    Stored rollup rows are only collected as they come and summed in one vectorized pass: a month by hour is
    some ten thousand rows, and per-row numpy calls would cost more than the database read.
    """

    def __init__(self, buckets: int) -> None:
        self.buckets = buckets
        self.counts = np.zeros((buckets, 4), dtype=np.int64)  # offered, answered, not_answered, talk_count
        self.sums = np.zeros((buckets, 2), dtype=np.float64)  # ring_sum, talk_sum
        self.maxima = np.full((buckets, 2), -np.inf)  # ring_max, talk_max
        self.histograms = {kind: SparseHistograms(buckets) for kind in HIST_KINDS}
        self._scalars: list[tuple[float, ...]] = []
        self._blobs: dict[str, tuple[list[int], list[bytes]]] = {kind: ([], []) for kind in HIST_KINDS}

    def add_stored(self, owners: Sequence[int], rows: Sequence[Sequence[Any]]) -> None:
        """Rollup rows, each summed into the bucket of the same position in ``owners``. A row is the counts
        (offered, answered, not_answered, talk_count), the sums (ring, talk), the maxima (ring, talk; negative
        when none) and the encoded histograms (ring, talk, abandon): what rollups.stored_inbound reads."""
        self._scalars.extend((owner, *row[:8]) for owner, row in zip(owners, rows, strict=True))
        for position, kind in enumerate(HIST_KINDS, start=8):
            kept_owners, blobs = self._blobs[kind]
            for owner, row in zip(owners, rows, strict=True):
                if row[position]:
                    kept_owners.append(owner)
                    blobs.append(bytes(row[position]))

    def add_partial(self, bucket: int, partial: InboundPartial) -> None:
        self.counts[bucket] += (partial.offered, partial.answered, partial.not_answered, partial.talk_count)
        self.sums[bucket] += (partial.ring_sum, partial.talk_sum)
        if partial.ring_max is not None:
            self.maxima[bucket, 0] = max(self.maxima[bucket, 0], partial.ring_max)
        if partial.talk_max is not None:
            self.maxima[bucket, 1] = max(self.maxima[bucket, 1], partial.talk_max)
        for kind in HIST_KINDS:
            histogram: Histogram = getattr(partial, kind)
            if histogram:
                bins = np.array(list(histogram), dtype=np.int64)
                counts = np.array(list(histogram.values()), dtype=np.int64)
                self.histograms[kind].add(np.full(len(bins), bucket, dtype=np.int64), bins, counts)

    def _flush(self) -> None:
        if self._scalars:
            table = np.array(self._scalars, dtype=np.float64)
            owner = table[:, 0].astype(np.int64)
            for column in range(4):
                summed = np.bincount(owner, table[:, 1 + column], self.buckets)
                self.counts[:, column] += summed.astype(np.int64)
            for column in range(2):
                self.sums[:, column] += np.bincount(owner, table[:, 5 + column], self.buckets)
            maxima = table[:, 7:9]
            np.maximum.at(self.maxima, owner, np.where(maxima < 0, -np.inf, maxima))
            self._scalars.clear()
        for kind, (owners, blobs) in self._blobs.items():
            if blobs:
                pairs = np.frombuffer(b"".join(blobs), dtype="<u4").reshape(-1, 2).astype(np.int64)
                rows = np.repeat(np.array(owners, dtype=np.int64), [len(b) // 8 for b in blobs])
                self.histograms[kind].add(rows, pairs[:, 0], pairs[:, 1])
                owners.clear()
                blobs.clear()
            self.histograms[kind].finish()

    def report(self, thresholds: Thresholds) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """(one figure set per bucket, the figure set of all buckets together)."""
        self._flush()
        per_bucket = _figures(self.counts, self.sums, self.maxima, self.histograms, thresholds)
        totals = _figures(
            self.counts.sum(axis=0, keepdims=True),
            self.sums.sum(axis=0, keepdims=True),
            self.maxima.max(axis=0, initial=-np.inf, keepdims=True),
            {kind: h.merged() for kind, h in self.histograms.items()},
            thresholds,
        )
        return per_bucket, totals[0]


def _figures(
    counts: npt.NDArray[np.int64],
    sums: npt.NDArray[np.float64],
    maxima: npt.NDArray[np.float64],
    histograms: dict[str, SparseHistograms],
    thresholds: Thresholds,
) -> list[dict[str, Any]]:
    """Figures for each row of the arrays (one row per bucket), computed column-wise."""
    short = histograms["abandon"].up_to(thresholds.short_abandon_s)
    within = histograms["ring"].up_to(thresholds.service_level_s)
    rang = histograms["ring"].totals()
    ring_p50 = histograms["ring"].percentiles(0.5, maxima[:, 0])
    ring_p90 = histograms["ring"].percentiles(0.9, maxima[:, 0])
    talk_p90 = histograms["talk"].percentiles(0.9, maxima[:, 1])
    figures = []
    for i in range(len(counts)):
        offered, answered, not_answered, talk_count = (int(v) for v in counts[i])
        short_i, rang_i = int(short[i]), int(rang[i])
        figures.append(
            {
                "offered": offered,
                "answered": answered,
                "not_answered": not_answered,
                "unresolved": offered - answered - not_answered,
                "answer_rate": _ratio(answered, offered),
                "short_abandons": short_i,
                "not_answered_rate_excl_short": _ratio(not_answered - short_i, offered - short_i),
                "ring_s": {
                    "mean": round_seconds(sums[i, 0] / rang_i) if rang_i else None,
                    "p50": ring_p50[i],
                    "p90": ring_p90[i],
                    "max": round_seconds(float(maxima[i, 0])) if rang_i else None,
                },
                "talk_s": {
                    "mean": round_seconds(sums[i, 1] / talk_count) if talk_count else None,
                    "p90": talk_p90[i],
                },
                "service_level": _ratio(int(within[i]), offered - short_i),
            }
        )
    return figures


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole > 0 else None


# Agents


@dataclass
class AgentPartial(Verdicts):
    nickname: str | None = None
    talk_total: float = 0.0
    cards_sent: int = 0
    call_outs: int = 0
    peak_concurrent_chats: int = 0

    def add_session(self, fact: SessionFact) -> None:
        if self.count(fact) and fact.connected and fact.talk_s is not None:
            self.talk_total += fact.talk_s

    @property
    def is_empty(self) -> bool:
        """Nothing to report (an agent seen only mid-call, say): no row, rather than a row of zeros."""
        return not (self.offered or self.cards_sent or self.call_outs or self.peak_concurrent_chats)

    def merge(self, other: AgentPartial) -> None:
        self.nickname = other.nickname or self.nickname
        self.add_counts(other)
        self.talk_total += other.talk_total
        self.cards_sent += other.cards_sent
        self.call_outs += other.call_outs
        self.peak_concurrent_chats = max(self.peak_concurrent_chats, other.peak_concurrent_chats)

    def row(self, agent_email: str | None) -> dict[str, Any]:
        return {
            "agent_email": agent_email,
            "agent_nickname": self.nickname,
            "offered": self.offered,
            "answered": self.answered,
            "not_answered": self.not_answered,
            "answer_rate": _ratio(self.answered, self.offered),
            "talk_s_total": round_seconds(self.talk_total),
            "talk_s_mean": round_seconds(self.talk_total / self.talk_count) if self.talk_count else None,
            "cards_sent": self.cards_sent,
            "call_outs": self.call_outs,
            "peak_concurrent_chats": self.peak_concurrent_chats,
        }


def is_chat(channel: str | None) -> bool:
    return channel in CHAT_CHANNELS


def peak_concurrency(intervals: Iterable[tuple[int, int]], start_ms: int, end_ms: int) -> int:
    """The most intervals [a, b] open at one instant within [start, end). An interval ending at the instant
    another starts counts as overlapping it: the same agent held both in that millisecond."""
    points: list[tuple[int, int]] = []
    for a, b in intervals:
        lo, hi = max(a, start_ms), min(b, end_ms - 1)
        if lo > hi:
            continue
        points.append((lo, 0))  # opens sort before closes at the same instant
        points.append((hi, 1))
    points.sort()
    open_now = peak = 0
    for _, kind in points:
        if kind == 0:
            open_now += 1
            peak = max(peak, open_now)
        else:
            open_now -= 1
    return peak


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return round_seconds(ordered[middle])
    return round_seconds((ordered[middle - 1] + ordered[middle]) / 2)
