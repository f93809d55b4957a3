"""Campaign metrics: best-so-far, regret, effort to reach a fraction of the oracle.

A campaign's *recommendation* after k experiments is the recipe with the highest
**measured** performance among the first k (what a lab would hand over); its quality is
that recipe's **buildable** performance from the ground truth
(:mod:`synthgap.envs.buildable`) as a **fraction of the oracle** of the campaign's
candidate targets (:mod:`.oracle`). So measurement luck does not count as progress,
1.0 is the best achievable and regret is ``1 - fraction``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthgap.envs.buildable import fraction_of_oracle

FRACTIONS = (0.90, 0.95)  # fractions of the oracle whose effort is reported


def best_so_far(measured: Sequence[float], buildable: Sequence[float]) -> np.ndarray:
    """(k,) buildable performance of the recommendation after each experiment (the unit
    of ``buildable``)."""
    measured = np.asarray(measured, dtype=float)
    buildable = np.asarray(buildable, dtype=float)
    out = np.empty(len(measured))
    best = -np.inf
    pick = 0.0
    for i, (m, b) in enumerate(zip(measured, buildable, strict=True)):
        if m > best:
            best, pick = m, b
        out[i] = pick
    return out


def effort_to_reach(curve: np.ndarray, level: float, effort: np.ndarray) -> float:
    """Effort (experiments or hours, cumulative, same length as curve) when ``curve`` first
    reaches ``level``; NaN if it never does."""
    hit = np.flatnonzero(np.asarray(curve) >= level)
    return float(effort[hit[0]]) if len(hit) else float("nan")


def campaign_metrics(measured, buildable, lab_hours, oracle: float) -> dict:
    """Per-campaign curves and scalars, as fractions of the oracle.

    Args:
        measured: (k,) measured performance of each experiment (picks the recommendation).
        buildable: (k,) buildable performance of each experiment's recipe, property unit.
        lab_hours: (k,) lab time of each experiment, h.
        oracle: the oracle of the campaign's candidate targets, property unit (> 0).

    Returns a dict with ``best_so_far`` and ``regret`` (fractions of the oracle),
    ``cum_hours`` (lists, one per experiment) and ``final_best``, ``final_regret``
    (fractions), ``experiments_to_90`` / ``hours_to_90`` / ``experiments_to_95`` /
    ``hours_to_95`` (NaN if never reached).
    """
    bsf = best_so_far(measured, fraction_of_oracle(np.asarray(buildable, dtype=float), oracle))
    hours = np.cumsum(np.asarray(lab_hours, dtype=float))
    n = np.arange(1, len(bsf) + 1, dtype=float)
    out = {
        "best_so_far": bsf.tolist(),
        "regret": (1.0 - bsf).tolist(),
        "cum_hours": hours.tolist(),
        "final_best": float(bsf[-1]) if len(bsf) else 0.0,
        "final_regret": float(1.0 - bsf[-1]) if len(bsf) else 1.0,
    }
    for f in FRACTIONS:
        key = int(round(f * 100))
        out[f"experiments_to_{key}"] = effort_to_reach(bsf, f, n)
        out[f"hours_to_{key}"] = effort_to_reach(bsf, f, hours)
    return out


def median_iqr(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, 25th, 75th percentile); NaN counts as "never" (+inf), so a median of a
    mostly-unreached effort is NaN rather than an optimistic number over the lucky seeds."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return (float("nan"),) * 3
    never = 1e300  # stands for +inf (np.percentile cannot interpolate with inf)
    q = np.percentile(np.where(np.isnan(v), never, v), [50, 25, 75])
    return tuple(float(x) if x < 1e200 else float("nan") for x in q)


def curve_quantiles(curves: np.ndarray) -> dict[str, np.ndarray]:
    """Median and IQR of (seeds, k) curves, per column."""
    c = np.asarray(curves, dtype=float)
    return {"median": np.median(c, axis=0), "q25": np.percentile(c, 25, axis=0),
            "q75": np.percentile(c, 75, axis=0)}


def on_hours_grid(curve: np.ndarray, hours: np.ndarray, grid: np.ndarray, before: float) -> np.ndarray:
    """A step curve indexed by cumulative hours, read on ``grid`` (``before`` until the
    first experiment is done)."""
    idx = np.searchsorted(hours, grid, side="right") - 1
    return np.where(idx >= 0, np.asarray(curve)[np.maximum(idx, 0)], before)


def cell_oracle(result, record: dict) -> float:
    """The oracle (property unit) a benchmark cell's ``record`` is scored against: its held-out
    world's, or its system's (``result.oracles``, keyed as :func:`~.benchmark_cells.oracle_key`)."""
    return result.oracles[record.get("oracle_key") or record["cell"]["system_key"]]["value"]
