"""The Wilson score interval of a proportion, and how many audits a verdict on a precision target needs.

Wilson rather than the normal ("Wald") interval: with precision near 1 and tens of audits the Wald
interval collapses to a point at p̂ = 1 and claims certainty; Wilson's stays inside [0, 1] and keeps a
sensible width at 0 or n errors. For k successes of n at z (1.96 for 95%):

    centre = (p̂ + z²/2n) / (1 + z²/n),  half-width = z·sqrt(p̂(1 − p̂)/n + z²/4n²) / (1 + z²/n).
"""

from __future__ import annotations

import math
from statistics import NormalDist

Z_95 = NormalDist().inv_cdf(0.975)  # 1.959963984540054: the two-sided 95% quantile


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (low, high) of `successes` of `trials`; ValueError without trials."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"a proportion needs 0 <= successes <= trials and trials > 0, got {successes} of {trials}")
    share = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (share + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z2 / (4 * trials * trials)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends (rounding leaves 1e-17 there)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def audits_needed(target: float, z: float = Z_95) -> int | None:
    """The fewest audits whose interval can lie wholly at or above `target`: with every audit right, the Wilson
    lower bound is n / (n + z²), which reaches the target from n = z²·T / (1 − T) on (381 for 0.99, 35 for 0.9).
    With fewer audits no record, however clean, can show the target is met, so a verdict of "met" would be an
    absence of evidence; a shortfall can still be shown (one wrong answer in ten audits is far below 0.99).
    None for a target of 1, which no sample can show."""
    if not 0 < target <= 1:
        raise ValueError(f"a target precision is in (0, 1], got {target}")
    if target >= 1:
        return None
    needed = max(1, math.ceil(z * z * target / (1 - target) - 1e-9))
    while wilson_interval(needed, needed, z)[0] < target:  # guards the rounding of the closed form
        needed += 1
    return needed
