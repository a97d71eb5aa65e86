"""SparseHistograms' fast paths give what the general ones give: finish on entries already one per (owner,
bin) in order, percentiles of several fractions from one running sum; the calls report's histogram decoding
of mixed widths."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from service.domain.call_metrics import decode_counts, encode_counts, histogram_of
from service.domain.histograms import SparseHistograms


def _reference(entries: list[tuple[int, int, int]], owners: int) -> list[dict[int, int]]:
    found: list[dict[int, int]] = [{} for _ in range(owners)]
    for owner, b, count in entries:
        found[owner][b] = found[owner].get(b, 0) + count
    return [{b: c for b, c in sorted(h.items()) if c} for h in found]


def _as_dicts(h: SparseHistograms) -> list[dict[int, int]]:
    found: list[dict[int, int]] = [{} for _ in range(h.buckets)]
    for owner, b, count in zip(h.owner.tolist(), h.bin.tolist(), h.count.tolist(), strict=True):
        found[owner][b] = count
    return found


def test_finish_and_percentiles_sorted_or_not() -> None:
    rng = random.Random(3)
    for sorted_input in (True, False):
        owners = 9
        entries = []
        for owner in range(owners):
            if owner == 4:
                continue  # an owner with no entries
            bins = sorted(rng.sample(range(700), rng.randrange(1, 40)))
            entries += [(owner, b, rng.randrange(1, 70_000)) for b in bins]
        if not sorted_input:
            entries += entries[:10]  # duplicates to sum
            rng.shuffle(entries)
        h = SparseHistograms(owners)
        h.add(*(np.array(column, dtype=np.int64) for column in zip(*entries, strict=True)))
        h.finish()
        assert _as_dicts(h) == _reference(entries, owners)
        maxima = np.array([rng.choice([5.0, 900.0]) for _ in range(owners)])
        for fractions in ((0.5, 0.9), (0.1,), (0.99, 0.5, 1.0)):
            assert h.percentiles_of(fractions, maxima) == [h.percentiles(f, maxima) for f in fractions]


def test_decode_counts_of_mixed_widths() -> None:
    histograms = [{3: 1, 10: 2}, {}, {0: 70_000, 600: 1}, {1: 65_535}, {}, {7: 9, 8: 65_536}]
    blobs = [encode_counts(h) for h in histograms]
    assert {blob[0] for blob in blobs if blob} == {2, 4}
    owner, bins, counts = decode_counts(blobs, np.arange(len(blobs), dtype=np.int64) * 10)
    decoded = sorted(zip(owner.tolist(), bins.tolist(), counts.tolist(), strict=True))
    expected = sorted((i * 10, b, c) for i, h in enumerate(histograms) for b, c in h.items())
    assert decoded == expected
    assert [histogram_of(blob) for blob in blobs] == histograms


def test_sum_stored_is_the_merge_of_the_partials() -> None:
    from collections import Counter

    from service.domain.call_metrics import (
        COUNTS,
        CallPartial,
        encode_satisfaction,
        partial_of_row,
        sum_stored,
    )

    rng = random.Random(8)
    rows: list[tuple[Any, ...]] = []
    for _ in range(60):
        p = CallPartial(
            counts=[rng.randrange(100) for _ in COUNTS],
            queue_max=rng.choice([None, rng.randrange(900)]),
            queue={b: rng.randrange(1, 40_000) for b in rng.sample(range(700), rng.randrange(4))},
            answered_queue={b: rng.randrange(1, 9) for b in rng.sample(range(700), rng.randrange(4))},
            satisfaction=Counter(
                {k: rng.randrange(1, 4) for k in rng.sample(["1", "2", "3"], rng.randrange(3))}
            ),
            skill_group_name=rng.choice([None, "a", "b"]),
        )
        most = -1 if p.queue_max is None else p.queue_max
        hists = (encode_counts(p.queue), encode_counts(p.answered_queue))
        stored = (p.skill_group_name, *p.counts, most, *hists, encode_satisfaction(p.satisfaction))
        rows.append((rng.choice("xyz"), rng.randrange(3), *stored))
    merged: dict[tuple[str, int], CallPartial] = {}
    for row in rows:
        merged.setdefault((row[0], row[1]), CallPartial()).merge(partial_of_row(row[2:]))
    found = {key: sums for key, *sums in sum_stored(rows, 2)}
    assert set(found) == set(merged)
    for key, p in merged.items():
        assert found[key] == [
            p.skill_group_name, p.counts, p.queue_max, encode_counts(p.queue),
            encode_counts(p.answered_queue), encode_satisfaction(p.satisfaction),
        ]  # fmt: skip
