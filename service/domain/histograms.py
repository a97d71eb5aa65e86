"""Durations as histograms with fixed bins, so that partial results (a rollup per quarter hour, a slice of
raw sessions) add up to exactly what one pass over all sessions would give. Percentiles are nearest-rank
percentiles rounded up to the bin's upper bound (whole seconds up to 10 minutes); thresholds up to
10 minutes fall on a bin boundary, so comparisons with them are exact. Pure: no I/O.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

# Bin upper bounds (seconds): 1 s steps to 10 min, 10 s to 1 h, 1 min to 4 h, 10 min to 24 h, then one more.
_BOUNDS: list[float] = [
    0.0,
    *range(1, 601),
    *range(610, 3601, 10),
    *range(3660, 14401, 60),
    *range(15000, 86401, 600),
    math.inf,
]


BIN_BOUNDS = np.array(_BOUNDS, dtype=np.float64)


NBINS = len(_BOUNDS)


# Thresholds up to here fall on a bin boundary, so comparisons with them are exact.
EXACT_THRESHOLD_MAX_S = 600


# Reports of up to this many bucket x bin cells sum histograms densely (16 MB); bigger ones sort instead.
DENSE_CELLS = 2_000_000


HIST_KINDS = ("ring", "talk", "abandon")


def bin_of(seconds: float) -> int:
    """The index of the bin holding ``seconds``: bin i holds (bound[i-1], bound[i]]."""
    if seconds <= 0:
        return 0
    if seconds <= 600:
        return math.ceil(seconds)
    if seconds <= 3600:
        return 600 + math.ceil((seconds - 600) / 10)
    if seconds <= 14400:
        return 900 + math.ceil((seconds - 3600) / 60)
    if seconds <= 86400:
        return 1080 + math.ceil((seconds - 14400) / 600)
    return NBINS - 1


Histogram = dict[int, int]


def add_to(histogram: Histogram, seconds: float) -> None:
    index = bin_of(seconds)
    histogram[index] = histogram.get(index, 0) + 1


def encode_histogram(histogram: Histogram) -> bytes:
    """Sparse, as little-endian uint32 pairs (bin, count): what the rollup tables store."""
    pairs = np.array(sorted(histogram.items()), dtype="<u4").reshape(-1, 2)
    return pairs.tobytes()


def decode_pairs(blob: bytes | None) -> npt.NDArray[np.uint32]:
    if not blob:
        return np.empty((0, 2), dtype="<u4")
    return np.frombuffer(blob, dtype="<u4").reshape(-1, 2)


class SparseHistograms:
    """One histogram per bucket, kept as (bucket, bin, count) triples: a report of ten thousand buckets then
    costs what its data costs, not buckets x bins of memory."""

    def __init__(self, buckets: int) -> None:
        self.buckets = buckets
        self._parts: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []
        self.owner = self.bin = self.count = np.empty(0, dtype=np.int64)

    def add(
        self, owners: npt.NDArray[np.int64], bins: npt.NDArray[np.int64], counts: npt.NDArray[np.int64]
    ) -> None:
        self._parts.append((owners, bins, counts))

    def finish(self) -> SparseHistograms:
        """Sum duplicate (bucket, bin) entries and sort them by bucket, then bin."""
        if self._parts:
            owner = np.concatenate([self.owner, *(p[0] for p in self._parts)])
            bins = np.concatenate([self.bin, *(p[1] for p in self._parts)])
            counts = np.concatenate([self.count, *(p[2] for p in self._parts)])
            self._parts.clear()
            # Cells only up to the highest bin in use: durations crowd the first few hundred bins.
            width = int(bins.max()) + 1 if len(bins) else 1
            flat = owner * width + bins
            if bool((flat[1:] > flat[:-1]).all()) and bool(counts.all()):
                # Already one entry per (bucket, bin), in order (one sorted histogram per bucket, buckets in
                # order: a month by hour over hour rollups): nothing to sum.
                keys, self.count = flat, counts.astype(np.int64)
            elif self.buckets * width <= DENSE_CELLS:
                # Counting into a dense array and reading back its non-zero cells needs no sort.
                dense = np.bincount(flat, counts, self.buckets * width)
                keys = np.flatnonzero(dense)
                self.count = dense[keys].astype(np.int64)
            else:
                keys, inverse = np.unique(flat, return_inverse=True)
                self.count = np.bincount(inverse, counts, len(keys)).astype(np.int64)
            self.owner, self.bin = keys // width, keys % width
        return self

    def merged(self) -> SparseHistograms:
        """All buckets as one."""
        one = SparseHistograms(1)
        one.add(np.zeros_like(self.owner), self.bin, self.count)
        return one.finish()

    def totals(self) -> npt.NDArray[np.int64]:
        return np.bincount(self.owner, self.count, self.buckets).astype(np.int64)

    def up_to(self, seconds: int) -> npt.NDArray[np.int64]:
        """Per bucket, how many values are at most ``seconds`` (exact when it is a bin bound)."""
        keep = self.bin <= bin_of(seconds)
        return np.bincount(self.owner[keep], self.count[keep], self.buckets).astype(np.int64)

    def percentiles_of(
        self, fractions: tuple[float, ...], maxima: npt.NDArray[np.float64]
    ) -> list[list[float | None]]:
        """``percentiles`` for several fractions, from one running sum: the same figures, one pass."""
        results: list[list[float | None]] = [[None] * self.buckets for _ in fractions]
        if not len(self.count):
            return results
        totals = self.totals()
        running = np.cumsum(self.count)
        # Entries are sorted by owner: each owner's first entry is where the owner changes.
        first = np.flatnonzero(np.concatenate(([True], ~same_owner(self.owner))))
        before = np.zeros(self.buckets, dtype=np.int64)
        before[self.owner[first]] = np.where(first > 0, running[first - 1], 0)
        within = running - before[self.owner]
        for result, fraction in zip(results, fractions, strict=True):
            ranks = np.maximum(1, np.ceil(fraction * totals)).astype(np.int64)
            # The first entry of each owner reaching its rank: entries are sorted by owner, then bin.
            reached = within >= ranks[self.owner]
            first_hit = np.flatnonzero(
                reached & ~np.concatenate(([False], reached[:-1] & same_owner(self.owner)))
            )
            hit_owners = self.owner[first_hit]
            bounds = np.minimum(BIN_BOUNDS[self.bin[first_hit]], maxima[hit_owners])
            for owner, bound in zip(hit_owners.tolist(), bounds.tolist(), strict=True):
                result[owner] = round(bound, 3)
        return results

    def percentiles(self, fraction: float, maxima: npt.NDArray[np.float64]) -> list[float | None]:
        """Per bucket: the nearest-rank percentile, as the upper bound of its bin, never above the maximum."""
        totals = self.totals()
        result: list[float | None] = [None] * self.buckets
        if not len(self.count):
            return result
        running = np.cumsum(self.count)
        owners, first = np.unique(self.owner, return_index=True)
        before = np.zeros(self.buckets, dtype=np.int64)
        before[owners] = np.where(first > 0, running[first - 1], 0)
        within = running - before[self.owner]
        ranks = np.maximum(1, np.ceil(fraction * totals)).astype(np.int64)
        reached = np.flatnonzero(within >= ranks[self.owner])
        hit_owners, first_hit = np.unique(self.owner[reached], return_index=True)
        bounds = BIN_BOUNDS[self.bin[reached[first_hit]]]
        for owner, bound in zip(hit_owners.tolist(), bounds.tolist(), strict=True):
            result[owner] = round_seconds(min(bound, float(maxima[owner])))
        return result


def same_owner(owner: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Per entry after the first: whether it has the owner of the entry before it."""
    same: npt.NDArray[np.bool_] = owner[1:] == owner[:-1]
    return same


def round_seconds(value: float) -> float:
    return round(float(value), 3)
