"""The calls report's figures (docs/metrics.md, "Calls"): what each inbound CCC call record counts as, the
partial sums of a set of records, and the figures of added-up partials. Pure: no I/O.

A partial is what a rollup row stores and what a report computes from raw records at its edges; partials add
up like the union of their sets, so a report reads the same whichever way its range is cut. Queue seconds
are whole seconds (CCC's timestamps are Unix seconds), kept in the fixed-bin histograms of
domain/histograms.py: percentiles and the service-level threshold are exact up to 10 minutes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from service.domain.histograms import (
    Histogram,
    SparseHistograms,
    add_to,
    decode_pairs,
    encode_histogram,
    round_seconds,
)

# Ended before an agent answered, by the caller, and where: CCC's EndStatusString.
ABANDONED_STATUSES: dict[str, str] = {
    "ivrGiveUp": "abandoned_ivr",
    "waitingGiveUp": "abandoned_queue",
    "ringingGiveUp": "abandoned_ringing",
}
NO_AGENT_STATUS = "noSeatOnline"
AFTER_HOURS_STATUS = "notWorkTime"
HUNG_UP_SIDES = ("user", "seat", "system")

# The summed columns of a partial, in the order of the rollup table's columns.
COUNTS: tuple[str, ...] = (
    "offered",
    "answered",
    "abandoned_ivr",
    "abandoned_queue",
    "abandoned_ringing",
    "no_agent",
    "after_hours",
    "queued",
    "transferred",
    "hung_up_user",
    "hung_up_seat",
    "hung_up_system",
    "queue_count",
    "queue_sum",
    "answered_queued",
    "answered_queue_sum",
)
_INDEX = {name: i for i, name in enumerate(COUNTS)}
NO_SKILL_GROUP = -1  # the rollups' key for a record with no queued skill group


@dataclass
class CallPartial:
    """What the calls report needs of a set of inbound call records."""

    counts: list[int] = field(default_factory=lambda: [0] * len(COUNTS))
    queue_max: int | None = None
    queue: Histogram = field(default_factory=dict)  # queue_s of every record with one
    answered_queue: Histogram = field(default_factory=dict)  # queue_s of the answered ones
    satisfaction: Counter[str] = field(default_factory=Counter)
    skill_group_name: str | None = None

    def add_record(self, record: Mapping[str, Any]) -> None:
        """One inbound record: a row of call_records (its accept_at, queued_at, queue_s, end_status,
        hung_up_by, transfers, satisfaction and skill_group_name)."""
        c, i = self.counts, _INDEX
        c[i["offered"]] += 1
        answered = bool(record["accept_at"])
        status = record["end_status"]
        if answered:
            c[i["answered"]] += 1
        elif status in ABANDONED_STATUSES:
            c[i[ABANDONED_STATUSES[status]]] += 1
        if status == NO_AGENT_STATUS:
            c[i["no_agent"]] += 1
        elif status == AFTER_HOURS_STATUS:
            c[i["after_hours"]] += 1
        if record["queued_at"] is not None:
            c[i["queued"]] += 1
        if record["transfers"] > 0:
            c[i["transferred"]] += 1
        side = record["hung_up_by"]
        if side in HUNG_UP_SIDES:
            c[i[f"hung_up_{side}"]] += 1
        queue_s = record["queue_s"]
        if queue_s is not None and record["queued_at"] is not None:
            c[i["queue_count"]] += 1
            c[i["queue_sum"]] += queue_s
            self.queue_max = queue_s if self.queue_max is None else max(self.queue_max, queue_s)
            add_to(self.queue, queue_s)
            if answered:
                c[i["answered_queued"]] += 1
                c[i["answered_queue_sum"]] += queue_s
                add_to(self.answered_queue, queue_s)
        keys = {key["key"] for key in orjson.loads(record["satisfaction"] or "[]") if key.get("key")}
        self.satisfaction.update(keys)
        name = record["skill_group_name"]
        if name is not None and (self.skill_group_name is None or name > self.skill_group_name):
            self.skill_group_name = name


@dataclass(frozen=True)
class CallCells:
    """Partials in columns, one row per cell (bucket, skill group): what a report adds up. Histograms are
    encoded as rollups store them (histograms.encode_histogram), satisfaction as JSON text or None."""

    buckets: npt.NDArray[np.int64]
    groups: Sequence[int]
    names: Sequence[str | None]
    counts: npt.NDArray[np.int64]  # cells x COUNTS
    queue_max: npt.NDArray[np.int64]  # -1: none
    queue_hist: Sequence[bytes]
    answered_queue_hist: Sequence[bytes]
    satisfaction: Sequence[str | None]


class CallAccumulator:
    """Adds up cells into per-bucket, per-skill-group and total figures."""

    def __init__(self, buckets: int) -> None:
        self.buckets = buckets
        self._cells: list[CallCells] = []

    def add(self, cells: CallCells) -> None:
        if len(cells.buckets):
            self._cells.append(cells)

    def report(
        self, service_level_s: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any], list[tuple[int | None, str | None, dict[str, Any]]]]:
        """(figures per bucket, figures of the whole range, (skill group id, name, figures) per skill group
        that has a record, by id, no skill group last)."""
        nb = self.buckets
        bucket = np.concatenate([c.buckets for c in self._cells]) if self._cells else np.empty(0, np.int64)
        group_ids = [g for c in self._cells for g in c.groups]
        found = sorted(set(group_ids), key=lambda g: (g == NO_SKILL_GROUP, g))
        code_of = {g: i for i, g in enumerate(found)}
        group = np.array([code_of[g] for g in group_ids], dtype=np.int64)
        ng = len(found)
        counts = (
            np.concatenate([c.counts for c in self._cells])
            if self._cells
            else np.empty((0, len(COUNTS)), np.int64)
        )
        qmax = np.concatenate([c.queue_max for c in self._cells]) if self._cells else np.empty(0, np.int64)
        by_bucket = np.zeros((nb, len(COUNTS)), dtype=np.int64)
        np.add.at(by_bucket, bucket, counts)
        by_group = np.zeros((ng, len(COUNTS)), dtype=np.int64)
        np.add.at(by_group, group, counts)
        max_bucket = np.full(nb, -1, dtype=np.int64)
        np.maximum.at(max_bucket, bucket, qmax)
        max_group = np.full(ng, -1, dtype=np.int64)
        np.maximum.at(max_group, group, qmax)

        def histograms(kind: str) -> tuple[SparseHistograms, SparseHistograms]:
            blobs: list[bytes] = [b for c in self._cells for b in getattr(c, kind)]
            pairs = decode_pairs(b"".join(blobs)).astype(np.int64)
            lengths = np.array([len(b) // 8 for b in blobs], dtype=np.int64)
            owner_b, owner_g = np.repeat(bucket, lengths), np.repeat(group, lengths)
            per_bucket, per_group = SparseHistograms(nb), SparseHistograms(ng)
            per_bucket.add(owner_b, pairs[:, 0], pairs[:, 1])
            per_group.add(owner_g, pairs[:, 0], pairs[:, 1])
            return per_bucket.finish(), per_group.finish()

        queue_b, queue_g = histograms("queue_hist")
        answered_b, answered_g = histograms("answered_queue_hist")
        sat_bucket: list[Counter[str]] = [Counter() for _ in range(nb)]
        sat_group: list[Counter[str]] = [Counter() for _ in range(ng)]
        names: list[str | None] = [None] * ng
        position = 0
        for cells in self._cells:
            for j, text in enumerate(cells.satisfaction):
                if text:
                    found_keys = orjson.loads(text)
                    sat_bucket[int(bucket[position + j])].update(found_keys)
                    sat_group[int(group[position + j])].update(found_keys)
            for j, name in enumerate(cells.names):
                code = int(group[position + j])
                if name is not None and (names[code] is None or name > str(names[code])):
                    names[code] = name
            position += len(cells.buckets)
        total_sat: Counter[str] = Counter()
        for counter in sat_bucket:
            total_sat.update(counter)
        per_bucket = _figures(by_bucket, max_bucket, queue_b, answered_b, sat_bucket, service_level_s)
        totals = _figures(
            by_bucket.sum(axis=0, keepdims=True),
            np.array([max_bucket.max(initial=-1)], dtype=np.int64),
            queue_b.merged(),
            answered_b.merged(),
            [total_sat],
            service_level_s,
        )[0]
        per_group = _figures(by_group, max_group, queue_g, answered_g, sat_group, service_level_s)
        groups = [(None if g == NO_SKILL_GROUP else g, names[i], per_group[i]) for i, g in enumerate(found)]
        return per_bucket, totals, groups


def encode_satisfaction(counter: Counter[str]) -> str | None:
    return orjson.dumps(dict(sorted(counter.items()))).decode() if counter else None


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def _mean(total: int, count: int) -> float | None:
    return round_seconds(total / count) if count else None


def _figures(
    counts: npt.NDArray[np.int64],
    maxima: npt.NDArray[np.int64],
    queue: SparseHistograms,
    answered_queue: SparseHistograms,
    satisfaction: Sequence[Counter[str]],
    service_level_s: int,
) -> list[dict[str, Any]]:
    within = answered_queue.up_to(service_level_s)
    as_float = maxima.astype(np.float64)
    p50 = queue.percentiles(0.5, as_float)
    p90 = queue.percentiles(0.9, as_float)
    result = []
    for row in range(len(counts)):
        c = dict(zip(COUNTS, (int(v) for v in counts[row]), strict=True))
        abandoned = c["abandoned_ivr"] + c["abandoned_queue"] + c["abandoned_ringing"]
        result.append(
            {
                "offered": c["offered"],
                "answered": c["answered"],
                "answer_rate": _share(c["answered"], c["offered"]),
                "abandoned": abandoned,
                "abandon_rate": _share(abandoned, c["offered"]),
                "abandoned_ivr": c["abandoned_ivr"],
                "abandoned_queue": c["abandoned_queue"],
                "abandoned_ringing": c["abandoned_ringing"],
                "no_agent": c["no_agent"],
                "after_hours": c["after_hours"],
                "queued": c["queued"],
                "service_level": _share(int(within[row]), c["queued"]),
                "asa_s": _mean(c["answered_queue_sum"], c["answered_queued"]),
                "queue_s": {
                    "mean": _mean(c["queue_sum"], c["queue_count"]),
                    "p50": p50[row],
                    "p90": p90[row],
                    "max": float(maxima[row]) if c["queue_count"] else None,
                },
                "transferred": c["transferred"],
                "hung_up_by": {side: c[f"hung_up_{side}"] for side in HUNG_UP_SIDES},
                "satisfaction": dict(sorted(satisfaction[row].items())),
            }
        )
    return result


def cells_of(partials: Mapping[tuple[int, int], CallPartial]) -> CallCells:
    """Partials keyed by (bucket, skill group id or NO_SKILL_GROUP) as cells."""
    keys = list(partials)
    values = [partials[k] for k in keys]
    return CallCells(
        buckets=np.array([k[0] for k in keys], dtype=np.int64),
        groups=[k[1] for k in keys],
        names=[p.skill_group_name for p in values],
        counts=np.array([p.counts for p in values], dtype=np.int64).reshape(-1, len(COUNTS)),
        queue_max=np.array([-1 if p.queue_max is None else p.queue_max for p in values], dtype=np.int64),
        queue_hist=[encode_histogram(p.queue) for p in values],
        answered_queue_hist=[encode_histogram(p.answered_queue) for p in values],
        satisfaction=[encode_satisfaction(p.satisfaction) for p in values],
    )
