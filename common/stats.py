"""The one percentile every reported latency uses, the one way a run takes a sample of labelled items, and the one
stable split by name (the dataset's test hold-out, the loop's held-back half).

Linear interpolation between the closest ranks: the value at rank (n - 1) * q / 100 of the sorted
sample, interpolated between its neighbours (numpy.percentile's default, Hyndman and Fan's type 7).
It never reports a p95 below the p50, and with one value every percentile is that value.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0 <= q <= 100) of `values`; ValueError when there are none."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values to take a percentile of")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must lie in [0, 100], got {q}")
    rank = (len(ordered) - 1) * q / 100
    below = math.floor(rank)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (rank - below)


def stratified_sample(labels: Mapping[str, str], count: int | None, seed: int = 0) -> list[str]:
    """`count` keys of `labels` (key -> label), each label's share as in the whole, drawn with `seed`; sorted.

    A class-sorted list cut at N is one class only (the first 20 test images were all bicycles); this keeps
    the class mix, and the same seed gives the same sample. Shares are rounded by largest remainder, so the
    sizes add up to `count` exactly. None, or a count at least the whole, takes every key.
    """
    if count is None or count >= len(labels):
        return sorted(labels)
    by_label: dict[str, list[str]] = defaultdict(list)
    for key in sorted(labels):
        by_label[labels[key]].append(key)
    exact = {label: count * len(keys) / len(labels) for label, keys in by_label.items()}
    sizes = {label: math.floor(share) for label, share in exact.items()}
    by_remainder = sorted(exact, key=lambda label: (sizes[label] - exact[label], label))
    for label in by_remainder[: count - sum(sizes.values())]:
        sizes[label] += 1
    rng = random.Random(seed)
    return sorted(key for label in sorted(by_label) for key in rng.sample(by_label[label], sizes[label]))


def stable_fraction(name: str, digest_bytes: int) -> float:
    """`name`'s place in [0, 1): the first `digest_bytes` of its SHA-256 as a fraction. The same name always lands
    on the same side of any cut, whatever else is in the set. (The dataset split reads 4 bytes, the loop 8: each
    kept its own so no published split moved.)"""
    head = hashlib.sha256(name.encode()).digest()[:digest_bytes]
    return int.from_bytes(head, "big") / 2 ** (8 * digest_bytes)
