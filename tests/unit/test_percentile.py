"""One percentile for every reported latency: numpy's linear interpolation, right for small samples too."""

from __future__ import annotations

import numpy as np
import pytest

from common.stats import percentile
from workflow.executions import Outcome, Summary


@pytest.mark.parametrize("values", [[0.7], [0.2, 0.1], [0.3, 0.1, 0.2], list(np.random.default_rng(0).random(100))])
@pytest.mark.parametrize("q", [0, 50, 90, 95, 99, 100])
def test_percentile_is_numpys_linear_interpolation(values, q):
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), abs=1e-12)


def test_small_samples_give_ordered_percentiles():
    assert percentile([5.0], 95) == 5.0
    assert (percentile([0.1, 0.2], 50), percentile([0.1, 0.2], 95)) == pytest.approx((0.15, 0.195))
    assert (percentile([1, 2, 3], 50), percentile([1, 2, 3], 95)) == pytest.approx((2.0, 2.9))
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"must lie in \[0, 100\]"):
        percentile([1.0], 0.95 * 1000)


def test_the_execution_summary_never_reports_p95_below_p50():
    outcomes = [Outcome("a", "succeeded", None, "bicycle", 0.99, 0.040), Outcome("b", "succeeded", None, "bicycle",
                                                                                   0.99, 0.100)]
    summary = Summary(outcomes, elapsed_s=1.0).as_dict()
    assert (summary["latency_p50_ms"], summary["latency_p95_ms"]) == (70.0, 97.0)
