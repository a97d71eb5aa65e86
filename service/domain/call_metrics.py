"""The calls report's figures (docs/metrics.md, "Calls"): what each inbound CCC call record counts as, the
partial sums of a set of records, and the figures of added-up partials. Pure: no I/O.

A partial is what a rollup row stores and what a report computes from raw records at its edges; partials add
up like the union of their sets, so a report reads the same whichever way its range is cut. Queue seconds
are whole seconds (CCC's timestamps are Unix seconds), kept in the fixed-bin histograms of
domain/histograms.py: percentiles and the service-level threshold are exact up to 10 minutes.
"""

from __future__ import annotations

import itertools
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
    bin_of,
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
ALL_SKILL_GROUPS = -2  # the rollups' key for a row of all skill groups together
ALL_CHANNELS = "*"
ALL_APPS = 0  # the rollups' and marks' sdk_app_id of rows of every app together (CCC's ids are 1400000000 up)

# A rollup's histogram: one byte saying how wide its counts are (2 or 4 bytes), then (bin, count) entries,
# little-endian, the bin as uint16 (there are 1,261 bins): half the bytes of histograms.encode_histogram's
# uint32 pairs for what a month's report reads. Empty: no bytes at all.
_ENTRY = {2: np.dtype([("bin", "<u2"), ("count", "<u2")]), 4: np.dtype([("bin", "<u2"), ("count", "<u4")])}


def encode_counts(histogram: Histogram) -> bytes:
    if not histogram:
        return b""
    width = 2 if max(histogram.values()) < 65_536 else 4
    entries = np.array(sorted(histogram.items()), dtype=np.int64)
    packed = np.empty(len(entries), dtype=_ENTRY[width])
    packed["bin"], packed["count"] = entries[:, 0], entries[:, 1]
    return bytes([width]) + packed.tobytes()


def decode_counts(blobs: Sequence[bytes], owners: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], ...]:
    """(owner, bin, count) of every entry of these histograms, each owned by its position in ``owners``.
    One join of the blobs, their width bytes masked out, then numpy views: no Python step per blob."""
    empty = np.empty(0, np.int64)
    if not len(blobs):
        return empty, empty, empty
    lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    present = np.flatnonzero(lengths)
    heads = (np.cumsum(lengths) - lengths)[present]
    widths = data[heads]
    body = np.ones(len(data), dtype=bool)
    body[heads] = False
    found_owners, found_bins, found_counts = [], [], []
    for width, entry in _ENTRY.items():
        mine = widths == width
        if not mine.any():
            continue
        if mine.all():
            keep = body
        else:
            keep = body & np.repeat(np.isin(np.arange(len(blobs)), present[mine]), lengths)
        entries = data[keep].view(entry)
        found_owners.append(np.repeat(owners[present[mine]], (lengths[present[mine]] - 1) // entry.itemsize))
        found_bins.append(entries["bin"].astype(np.int64))
        found_counts.append(entries["count"].astype(np.int64))
    if not found_owners:
        return empty, empty, empty
    return np.concatenate(found_owners), np.concatenate(found_bins), np.concatenate(found_counts)


def histogram_of(blob: bytes | None) -> Histogram:
    if not blob:
        return {}
    entries = np.frombuffer(blob[1:], dtype=_ENTRY[blob[0]])
    return dict(zip(entries["bin"].tolist(), entries["count"].tolist(), strict=True))


@dataclass
class CallPartial:
    """What the calls report needs of a set of inbound call records."""

    counts: list[int] = field(default_factory=lambda: [0] * len(COUNTS))
    queue_max: int | None = None
    queue: Histogram = field(default_factory=dict)  # queue_s of every record with one
    answered_queue: Histogram = field(default_factory=dict)  # queue_s of the answered ones
    satisfaction: Counter[str] = field(default_factory=Counter)
    skill_group_name: str | None = None

    def merge(self, other: CallPartial) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        if other.queue_max is not None:
            self.queue_max = (
                other.queue_max if self.queue_max is None else max(self.queue_max, other.queue_max)
            )
        for mine, theirs in ((self.queue, other.queue), (self.answered_queue, other.answered_queue)):
            for index, count in theirs.items():
                mine[index] = mine.get(index, 0) + count
        self.satisfaction.update(other.satisfaction)
        name = other.skill_group_name
        if name is not None and (self.skill_group_name is None or name > self.skill_group_name):
            self.skill_group_name = name

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
    encoded as rollups store them (encode_counts), satisfaction as JSON text or None."""

    buckets: npt.NDArray[np.int64]
    groups: Sequence[int]
    names: Sequence[str | None]
    counts: npt.NDArray[np.int64]  # cells x COUNTS
    queue_max: npt.NDArray[np.int64]  # -1: none
    queue_hist: Sequence[bytes]
    answered_queue_hist: Sequence[bytes]
    satisfaction: Sequence[str | None]


class CallAccumulator:
    """Adds up cells into per-bucket and total figures (the bucket side: every record once, whatever its
    skill group) and per-skill-group figures (the group side: every record once, whatever its bucket). Raw
    records go to both sides; a rollup row of all skill groups to the bucket side, one of a skill group
    over a span longer than a bucket to the group side."""

    def __init__(self, buckets: int) -> None:
        self.buckets = buckets
        self._bucket_side: list[CallCells] = []
        self._group_side: list[CallCells] = []

    def add(self, cells: CallCells, *, buckets: bool = True, groups: bool = True) -> None:
        if len(cells.buckets):
            if buckets:
                self._bucket_side.append(cells)
            if groups:
                self._group_side.append(cells)

    def report(
        self, service_level_s: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any], list[tuple[int | None, str | None, dict[str, Any]]]]:
        """(figures per bucket, figures of the whole range, (skill group id, name, figures) per skill group
        that has a record, by id, no skill group last)."""
        bucket_side = _Side(self._bucket_side, lambda c: c.buckets, self.buckets)
        per_bucket = bucket_side.figures(service_level_s)
        totals = bucket_side.total(service_level_s)
        group_ids = sorted(
            {g for c in self._group_side for g in c.groups}, key=lambda g: (g == NO_SKILL_GROUP, g)
        )
        code_of = {g: i for i, g in enumerate(group_ids)}
        group_side = _Side(
            self._group_side,
            lambda c: np.array([code_of[g] for g in c.groups], dtype=np.int64),
            len(group_ids),
        )
        per_group = group_side.figures(service_level_s)
        names = group_side.names()
        groups = [
            (None if g == NO_SKILL_GROUP else g, names[i], per_group[i]) for i, g in enumerate(group_ids)
        ]
        return per_bucket, totals, groups


class _Side:
    """Cells summed by owner (a bucket, or a skill group's position)."""

    def __init__(self, cells: list[CallCells], owners_of: Any, owners: int) -> None:
        self.cells, self.owners = cells, owners
        self.owner = (
            np.concatenate([owners_of(c) for c in cells]).astype(np.int64) if cells else np.empty(0, np.int64)
        )
        counts = np.concatenate([c.counts for c in cells]) if cells else np.empty((0, len(COUNTS)), np.int64)
        self.counts = np.zeros((owners, len(COUNTS)), dtype=np.int64)
        np.add.at(self.counts, self.owner, counts)
        qmax = np.concatenate([c.queue_max for c in cells]) if cells else np.empty(0, np.int64)
        self.maxima = np.full(owners, -1, dtype=np.int64)
        np.maximum.at(self.maxima, self.owner, qmax)
        # Histograms decoded in owner order: one sorted histogram per owner (a month by hour) then needs no
        # summing (SparseHistograms.finish).
        self._order = (
            None if bool((self.owner[1:] >= self.owner[:-1]).all()) else np.argsort(self.owner, kind="stable")
        )
        self.queue = SparseHistograms(owners)
        self.queue.add(*self._decoded("queue_hist"))
        self.queue.finish()
        # Of the answered calls' queue times only the count within a threshold is read: no histogram built.
        self._answered = self._decoded("answered_queue_hist")
        self.satisfaction: list[dict[str, int]] = [{} for _ in range(owners)]
        self._owner_list: list[int] = self.owner.tolist()
        loads = orjson.loads
        for owner, found in zip(self._owner_list, (s for c in cells for s in c.satisfaction), strict=True):
            if found:
                counter = self.satisfaction[owner]
                for key, count in loads(found).items():
                    counter[key] = counter.get(key, 0) + count

    def _decoded(self, kind: str) -> tuple[npt.NDArray[np.int64], ...]:
        blobs: list[bytes] = [b for c in self.cells for b in getattr(c, kind)]
        if self._order is None:
            return decode_counts(blobs, self.owner)
        return decode_counts([blobs[i] for i in self._order.tolist()], self.owner[self._order])

    def names(self) -> list[str | None]:
        names: list[str | None] = [None] * self.owners
        for code, name in zip(self._owner_list, (n for c in self.cells for n in c.names), strict=True):
            current = names[code]
            if name is not None and (current is None or name > current):
                names[code] = name
        return names

    def within(self, service_level_s: int) -> npt.NDArray[np.int64]:
        """Per owner, the answered calls whose queue time is at most the threshold (exact: a bin bound)."""
        owner, bins, counts = self._answered
        keep = bins <= bin_of(service_level_s)
        return np.bincount(owner[keep], counts[keep], self.owners).astype(np.int64)

    def figures(self, service_level_s: int) -> list[dict[str, Any]]:
        return _figures(
            self.counts,
            self.maxima,
            self.queue,
            self.within(service_level_s),
            self.satisfaction,
        )

    def total(self, service_level_s: int) -> dict[str, Any]:
        satisfaction: dict[str, int] = {}
        for counter in self.satisfaction:
            for key, count in counter.items():
                satisfaction[key] = satisfaction.get(key, 0) + count
        return _figures(
            self.counts.sum(axis=0, keepdims=True),
            np.array([self.maxima.max(initial=-1)], dtype=np.int64),
            self.queue.merged(),
            np.array([int(self.within(service_level_s).sum())], dtype=np.int64),
            [satisfaction],
        )[0]


def encode_satisfaction(counter: Counter[str]) -> str | None:
    return orjson.dumps(dict(sorted(counter.items()))).decode() if counter else None


def _figures(
    counts: npt.NDArray[np.int64],
    maxima: npt.NDArray[np.int64],
    queue: SparseHistograms,
    within: npt.NDArray[np.int64],
    satisfaction: Sequence[Mapping[str, int]],
) -> list[dict[str, Any]]:
    """The figures of each row, built column by column (one comprehension per figure, then one dict per row):
    the same values as one row at a time, a third of the time for a month by hour."""
    p50, p90 = queue.percentiles_of((0.5, 0.9), maxima.astype(np.float64))
    (
        offered, answered, ivr, queue_abandoned, ringing, no_agent, after_hours, queued, transferred,
        user, seat, system, queue_count, queue_sum, answered_queued, answered_queue_sum,
    ) = counts.T.tolist()  # fmt: skip
    abandoned = (counts[:, _INDEX["abandoned_ivr"]] + counts[:, _INDEX["abandoned_queue"]]
                 + counts[:, _INDEX["abandoned_ringing"]]).tolist()  # fmt: skip
    answer_rate = [round(a / o, 6) if o else None for a, o in zip(answered, offered, strict=True)]
    abandon_rate = [round(a / o, 6) if o else None for a, o in zip(abandoned, offered, strict=True)]
    service_level = [round(w / q, 6) if q else None for w, q in zip(within.tolist(), queued, strict=True)]
    asa = [round(s / c, 3) if c else None for s, c in zip(answered_queue_sum, answered_queued, strict=True)]
    mean = [round(s / c, 3) if c else None for s, c in zip(queue_sum, queue_count, strict=True)]
    most = [float(m) if c else None for m, c in zip(maxima.tolist(), queue_count, strict=True)]
    return [
        {
            "offered": o,
            "answered": a,
            "answer_rate": ar,
            "abandoned": ab,
            "abandon_rate": abr,
            "abandoned_ivr": i,
            "abandoned_queue": aq,
            "abandoned_ringing": r,
            "no_agent": na,
            "after_hours": ah,
            "queued": q,
            "service_level": sl,
            "asa_s": asa_s,
            "queue_s": {"mean": mn, "p50": m50, "p90": m90, "max": mx},
            "transferred": t,
            "hung_up_by": {"user": u, "seat": se, "system": sy},
            "satisfaction": dict(sorted(sat.items())) if sat else {},
        }
        for (
            o, a, ar, ab, abr, i, aq, r, na, ah, q, sl, asa_s, mn, m50, m90, mx, t, u, se, sy, sat
        ) in zip(
            offered, answered, answer_rate, abandoned, abandon_rate, ivr, queue_abandoned, ringing,
            no_agent, after_hours, queued, service_level, asa, mean, p50, p90, most, transferred,
            user, seat, system, satisfaction, strict=True,
        )
    ]  # fmt: skip


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
        queue_hist=[encode_counts(p.queue) for p in values],
        answered_queue_hist=[encode_counts(p.answered_queue) for p in values],
        satisfaction=[encode_satisfaction(p.satisfaction) for p in values],
    )


def partial_of_row(row: Sequence[Any]) -> CallPartial:
    """A stored rollup row as a partial: (skill_group_name, *COUNTS, queue_max or -1, queue_hist,
    answered_queue_hist, satisfaction)."""
    n = len(COUNTS)
    queue_max = int(row[1 + n])
    return CallPartial(
        counts=[int(v) for v in row[1 : 1 + n]],
        queue_max=None if queue_max < 0 else queue_max,
        queue=histogram_of(row[2 + n]),
        answered_queue=histogram_of(row[3 + n]),
        satisfaction=Counter(orjson.loads(row[4 + n])) if row[4 + n] else Counter(),
        skill_group_name=row[0],
    )


def encode_entries(bins: npt.NDArray[np.int64], counts: npt.NDArray[np.int64]) -> bytes:
    """encode_counts of a histogram given as its (bin, count) entries sorted by bin, none zero."""
    if not len(bins):
        return b""
    width = 2 if int(counts.max()) < 65_536 else 4
    packed = np.empty(len(bins), dtype=_ENTRY[width])
    packed["bin"], packed["count"] = bins, counts
    return bytes([width]) + packed.tobytes()


StoredSum = tuple[tuple[Any, ...], str | None, list[int], int | None, bytes, bytes, str | None]


def sum_stored(rows: Sequence[Sequence[Any]], key_length: int) -> list[StoredSum]:
    """Stored rollup rows, each ``(*key, *stored)`` (stored as partial_of_row reads it), summed per key: (key,
    skill_group_name, counts, queue_max, queue_hist, answered_queue_hist, satisfaction), as the merged
    CallPartials would store them, in numpy rather than a dict merge per row and histogram entry."""
    if not rows:
        return []
    code_of: dict[tuple[Any, ...], int] = {}
    codes = [code_of.setdefault(tuple(row[:key_length]), len(code_of)) for row in rows]
    owners = np.array(codes, dtype=np.int64)
    cells, n, k = len(code_of), len(COUNTS), key_length
    counts = np.zeros((cells, n), dtype=np.int64)
    np.add.at(counts, owners, np.array([row[k + 1 : k + 1 + n] for row in rows], dtype=np.int64))
    maxima = np.full(cells, -1, dtype=np.int64)
    np.maximum.at(maxima, owners, np.array([row[k + 1 + n] for row in rows], dtype=np.int64))
    histograms = []
    for column in (k + 2 + n, k + 3 + n):
        summed = SparseHistograms(cells)
        summed.add(*decode_counts([row[column] for row in rows], owners))
        summed.finish()
        ends = np.searchsorted(summed.owner, np.arange(cells + 1)).tolist()
        histograms.append(
            [encode_entries(summed.bin[lo:hi], summed.count[lo:hi]) for lo, hi in itertools.pairwise(ends)]
        )
    names: list[str | None] = [None] * cells
    satisfaction: list[Counter[str]] = [Counter() for _ in range(cells)]
    for code, row in zip(codes, rows, strict=True):
        name, found = row[k], row[k + 4 + n]
        if name is not None and (names[code] is None or name > names[code]):
            names[code] = name
        if found:
            satisfaction[code].update(orjson.loads(found))
    return [
        (key, names[i], counts[i].tolist(), None if maxima[i] < 0 else int(maxima[i]), histograms[0][i],
         histograms[1][i], encode_satisfaction(satisfaction[i]))
        for key, i in code_of.items()
    ]  # fmt: skip
