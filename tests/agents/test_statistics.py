"""Means with bootstrap intervals and paired tests (agents/statistics.py)."""

from __future__ import annotations

import numpy as np
import pytest

from synthgap.agents.statistics import bootstrap_mean, paired_wilcoxon


def test_the_interval_covers_the_mean_at_about_its_level():
    rng = np.random.default_rng(3)
    covered = 0
    for k in range(200):
        x = rng.normal(0.5, 0.2, 20)
        ci = bootstrap_mean(x, seed=k)
        assert ci.low <= ci.mean <= ci.high and ci.n == 20
        covered += ci.low <= 0.5 <= ci.high
    assert 0.88 <= covered / 200 <= 0.99  # a percentile bootstrap of 20 values: a little under 95 %


def test_a_paired_test_sees_a_consistent_small_difference_and_not_noise():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 20)
    assert paired_wilcoxon(base + 0.05 + rng.normal(0, 0.01, 20), base) < 1e-3
    assert paired_wilcoxon(base + rng.normal(0, 0.05, 20), base) > 0.05
    assert paired_wilcoxon(base, base) == 1.0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="non-empty 1-D array of finite values"):
        bootstrap_mean([])
    with pytest.raises(ValueError, match="two equal 1-D arrays"):
        paired_wilcoxon([1.0, 2.0], [1.0])
