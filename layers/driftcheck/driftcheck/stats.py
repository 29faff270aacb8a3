"""PSI and the two-sample tests, with numpy and math only: scipy (100+ MB) stays out of the Lambda layer.

- `ks_2samp`: two-sided Kolmogorov-Smirnov statistic and its exact p-value, P(D >= d) under the null,
  counted over the lattice paths between the two samples (the method scipy.stats.ks_2samp calls
  "exact", which its default "auto" uses whenever both samples have at most 10,000 values). Here it
  is used at every size: the path count costs one cumsum per value of the smaller sample.
- `chi2_sf` / `chi_square`: Pearson's chi-square test; the survival function of the chi-square
  distribution with integer degrees of freedom has a closed form (a finite series, plus erfc for odd
  degrees), summed in log space so that no term underflows while it still matters.

tests/unit/test_drift_stats.py checks both against scipy within 1e-9 (absolute) and 1e-6 (relative).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

PSI_FLOOR = 1e-4  # a share of 0 would make PSI infinite: empty buckets count as this share


def ks_2samp(first: Sequence[float] | np.ndarray, second: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(D, p): the largest distance between the two empirical CDFs, and the exact two-sided p-value."""
    x = np.sort(np.asarray(first, dtype=float))
    y = np.sort(np.asarray(second, dtype=float))
    m, n = len(x), len(y)
    if m == 0 or n == 0:
        raise ValueError("the Kolmogorov-Smirnov test needs two non-empty samples")
    points = np.concatenate([x, y])
    below_x = np.searchsorted(x, points, side="right").astype(np.int64)
    below_y = np.searchsorted(y, points, side="right").astype(np.int64)
    gap = int(np.max(np.abs(below_x * n - below_y * m)))  # D * m * n, an exact integer
    return gap / (m * n), _ks_exact_p_value(m, n, gap)


def _ks_exact_p_value(m: int, n: int, gap: int) -> float:
    """P(max |i*n - j*m| >= gap) over the C(m+n, m) equally likely monotone paths from (0, 0) to (m, n).

    Row by row, the paths that stayed strictly inside the band reach (i, j) from (i-1, j) or (i, j-1);
    inside a row the band is one run of j, so a row is a cumsum of the row before over that run. Rows
    are rescaled as they go (the counts overflow a float long before m + n reaches 2,000).
    """
    if gap <= 0:
        return 1.0
    if m == n:
        return _ks_square_p_value(n, gap // n)
    if m > n:
        m, n = n, m  # the lattice transposed: same paths, fewer rows
    previous = np.zeros(n + 1)
    log_scale = 0.0
    for i in range(m + 1):
        low = max(0, (i * n - gap) // m + 1)  # j*m > i*n - gap
        high = min(n, -((-(i * n + gap)) // m) - 1)  # j*m < i*n + gap
        row = np.zeros(n + 1)
        if low <= high:
            row[low:high + 1] = 1.0 if i == 0 else np.cumsum(previous[low:high + 1])
        peak = float(row.max())
        if peak == 0.0:
            return 1.0  # no path stays inside: D >= d always
        row /= peak
        log_scale += math.log(peak)
        previous = row
    if previous[n] == 0.0:
        return 1.0
    log_paths = math.lgamma(m + n + 1) - math.lgamma(m + 1) - math.lgamma(n + 1)
    inside = math.exp(math.log(previous[n]) + log_scale - log_paths)
    return min(1.0, max(0.0, 1.0 - inside))


def _ks_square_p_value(n: int, h: int) -> float:
    """Equal sizes: P(max |i - j| >= h) by the reflection principle,
    2 * (C(2n, n-h) - C(2n, n-2h) + C(2n, n-3h) - ...) / C(2n, n), evaluated innermost-first from the ratios
    of consecutive terms, so that a tiny p-value keeps its digits (as scipy's _compute_prob_outside_square)."""
    total = 0.0
    for k in range(n // h, -1, -1):
        ratio = 1.0  # C(2n, n - (k+1)h) / C(2n, n - kh)
        for j in range(h):
            ratio *= (n - k * h - j) / (n + k * h + j + 1)
        total = ratio * (1.0 - total)
    return min(1.0, max(0.0, 2 * total))


def chi2_sf(statistic: float, degrees: int) -> float:
    """P(X >= statistic) for X ~ chi-square with `degrees` (a positive integer) degrees of freedom.

    Q(k/2, x/2), the regularised upper incomplete gamma function: for even k, e^-h sum_{i<k/2} h^i / i!;
    for odd k, erfc(sqrt(h)) + sum_{i<(k-1)/2} e^-h h^(i+1/2) / Gamma(i + 3/2), with h = x/2.
    """
    if degrees < 1:
        raise ValueError(f"degrees of freedom must be a positive integer, got {degrees}")
    if statistic <= 0:
        return 1.0
    half = statistic / 2
    log_half = math.log(half)
    if degrees % 2 == 0:
        total = sum(math.exp(-half + i * log_half - math.lgamma(i + 1)) for i in range(degrees // 2))
    else:
        total = math.erfc(math.sqrt(half)) + sum(
            math.exp(-half + (i + 0.5) * log_half - math.lgamma(i + 1.5)) for i in range((degrees - 1) // 2))
    return min(1.0, max(0.0, total))


def chi_square(observed: Sequence[float] | np.ndarray, expected: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Pearson's goodness-of-fit test: (statistic, p) with len(observed) - 1 degrees of freedom."""
    observed_array, expected_array = np.asarray(observed, dtype=float), np.asarray(expected, dtype=float)
    statistic = float(np.sum((observed_array - expected_array) ** 2 / expected_array))
    return statistic, chi2_sf(statistic, len(observed_array) - 1)


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray, bins: int) -> float:
    """Population stability index over the baseline's quantile bins (equal-mass buckets)."""
    expected_array, actual_array = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    edges = np.unique(np.quantile(expected_array, np.linspace(0, 1, bins + 1))[1:-1])
    # Buckets (-inf, e1], (e1, e2], ..., (ek, inf): open at both ends, so traffic beyond the baseline's range
    # counts, and right-closed, so a constant baseline still has a bucket above it.
    expected_share = np.bincount(np.searchsorted(edges, expected_array), minlength=len(edges) + 1) / len(expected_array)
    actual_share = np.bincount(np.searchsorted(edges, actual_array), minlength=len(edges) + 1) / len(actual_array)
    return categorical_psi(expected_share, actual_share)


def categorical_psi(expected_share: Sequence[float] | np.ndarray, actual_share: Sequence[float] | np.ndarray,
                    floor: float = PSI_FLOOR) -> float:
    """PSI between two share vectors: sum((a - e) * ln(a / e)), shares floored so an empty bucket stays finite."""
    e = np.clip(np.asarray(expected_share, dtype=float), floor, None)
    a = np.clip(np.asarray(actual_share, dtype=float), floor, None)
    return float(np.sum((a - e) * np.log(a / e)))
