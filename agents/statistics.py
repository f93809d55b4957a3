"""Honest comparisons of planners over seeded campaigns: means with bootstrap intervals and paired tests.

A median of ten campaigns proves little; these are what a comparison reports instead:
:func:`bootstrap_mean` (the mean and its percentile bootstrap interval) and
:func:`paired_wilcoxon` (the Wilcoxon signed-rank test on per-campaign differences, the
campaigns paired by seed). scipy.stats does the test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["MeanInterval", "bootstrap_mean", "paired_wilcoxon"]


@dataclass(frozen=True)
class MeanInterval:
    """A mean and its bootstrap interval.

    Attributes:
        mean: the sample mean.
        low, high: the percentile bootstrap interval at ``level``.
        level: e.g. 0.95.
        n: the number of values.
    """

    mean: float
    low: float
    high: float
    level: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap_mean(values: Sequence[float], level: float = 0.95, resamples: int = 10_000,
                   seed: int = 0) -> MeanInterval:
    """The mean of ``values`` with its percentile bootstrap interval (``resamples`` resamples,
    seeded: the same values give the same interval).

    Raises:
        ValueError: no values, a non-finite value, or ``level`` outside (0, 1).
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"bootstrap_mean needs a non-empty 1-D array of finite values, got {x!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, (resamples, x.size))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return MeanInterval(float(x.mean()), float(low), float(high), float(level), int(x.size))


def paired_wilcoxon(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test that ``a - b`` is centred on 0
    (campaigns paired by seed; 1.0 when every pair is equal).

    Raises:
        ValueError: different lengths or fewer than 2 pairs.
    """
    from scipy.stats import wilcoxon

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError(f"paired_wilcoxon needs two equal 1-D arrays of >= 2 values, got {x.shape} and {y.shape}")
    if np.all(x == y):
        return 1.0
    return float(wilcoxon(x, y, zero_method="zsplit", alternative="two-sided").pvalue)
