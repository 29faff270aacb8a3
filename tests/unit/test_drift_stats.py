"""The drift core's statistics (numpy and math only, for the Lambda layer) against scipy's, where scipy is installed.

Tolerance: |ours - scipy| <= 1e-9 + 1e-6 * scipy for every p-value (measured: under 1e-12).
"""

from __future__ import annotations

import numpy as np
import pytest

from driftcheck.stats import categorical_psi, chi2_sf, chi_square, ks_2samp, psi

stats = pytest.importorskip("scipy.stats")

ABSOLUTE, RELATIVE = 1e-9, 1e-6


def close(ours: float, reference: float) -> bool:
    return abs(ours - reference) <= ABSOLUTE + RELATIVE * abs(reference)


@pytest.mark.parametrize("m,n,shift", [(1, 1, 0.0), (1, 7, 0.0), (5, 3, 0.5), (50, 50, 0.3), (200, 300, 0.1),
                                       (1000, 500, 0.2), (1000, 300, 0.0), (37, 1000, 0.5), (400, 400, 0.0),
                                       (300, 200, 0.6)])
def test_ks_matches_scipy_exact(m, n, shift):
    rng = np.random.default_rng(m * 1000 + n)
    first, second = rng.normal(0, 1, m), rng.normal(shift, 1, n)
    statistic, p = ks_2samp(first, second)
    reference = stats.ks_2samp(first, second, method="exact")
    assert statistic == pytest.approx(reference.statistic, abs=1e-15)
    assert close(p, reference.pvalue), (p, reference.pvalue)


def test_ks_matches_scipy_default_with_ties_and_tiny_p_values():
    rng = np.random.default_rng(7)
    tied_a, tied_b = rng.integers(0, 5, 300).astype(float), rng.integers(0, 6, 200).astype(float)
    assert close(ks_2samp(tied_a, tied_b)[1], stats.ks_2samp(tied_a, tied_b).pvalue)
    far_a, far_b = rng.normal(0, 1, 300), rng.normal(1.5, 1, 300)  # equal sizes: the reflection formula
    p = ks_2samp(far_a, far_b)[1]
    assert p < 1e-30 and close(p, stats.ks_2samp(far_a, far_b).pvalue)


def test_ks_refuses_an_empty_sample():
    with pytest.raises(ValueError, match="two non-empty samples"):
        ks_2samp([], [1.0])


@pytest.mark.parametrize("degrees", [1, 2, 3, 4, 5, 9, 10, 99])
@pytest.mark.parametrize("statistic", [0.0, 0.01, 0.5, 1.0, 3.0, 10.0, 50.0, 120.0, 300.0, 1500.0])
def test_chi2_survival_matches_scipy(degrees, statistic):
    assert close(chi2_sf(statistic, degrees), float(stats.chi2.sf(statistic, degrees)))


def test_chi_square_test_matches_scipy():
    observed, expected = np.array([120, 80, 40]), np.array([100.0, 100.0, 40.0])
    statistic, p = chi_square(observed, expected)
    reference = stats.chisquare(observed, expected)
    assert statistic == pytest.approx(reference.statistic) and close(p, reference.pvalue)


def test_psi_is_zero_for_identical_samples_grows_with_shift_and_survives_a_constant_baseline():
    sample = np.random.default_rng(0).normal(0, 1, 2000)
    assert psi(sample, sample, 10) == pytest.approx(0, abs=1e-9)
    assert 0 < psi(sample, sample + 0.2, 10) < psi(sample, sample + 1.0, 10)
    constant = np.zeros(100)
    assert psi(constant, constant, 10) == 0.0 and psi(constant, constant + 1, 10) > 1
    assert categorical_psi([0.5, 0.5], [0.5, 0.5]) == 0.0
