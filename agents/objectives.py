"""Two objectives of a campaign: buildable performance (maximised) and lab hours (minimised).

A lab pays for its answers in furnace time: a slower ramp, a longer dwell or a longer mill
can buy purity at the cost of hours. The benchmark scores every campaign on both: each
experiment is a point (lab hours h, buildable performance as a fraction of the oracle); the
campaign's **Pareto front** is its non-dominated set, and its **hypervolume** the area the
front dominates inside the reference box ``[0, REFERENCE_HOURS] h x [0, 1]`` (fraction of
the oracle), divided by the box's area: 0 (nothing made) to 1 (the oracle in no time).
The reference corner is the slowest recipe the recipe limits allow on the lab's nominal
durations (:func:`reference_hours`), so every planner of a benchmark shares it; a point
beyond it (queue waits on the twin) adds nothing.

The multi-objective planners (:mod:`.planners.optuna`: ``nsga2``, ``gp_mo``) are told the
same two objectives as the lab measures them: measured performance and lab hours.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from synthgap.envs.chemistry import Recipe
from synthgap.envs.chemistry.limits import RECIPE_BOUNDS
from synthgap.envs.lab.direct import lab_hours

__all__ = ["hypervolume", "pareto_front", "reference_hours"]


@lru_cache(maxsize=1)
def reference_hours() -> float:
    """Lab hours of the slowest recipe within the limits (longest mill and dwell, hottest
    dwell, slowest ramp and cooling) on the lab's nominal durations, h."""
    b = RECIPE_BOUNDS
    slowest = Recipe("X", ("Y",), milling_time=b["milling_time"][1], ramp_rate=b["ramp_rate"][0],
                     dwell_temperature=b["dwell_temperature"][1], dwell_time=b["dwell_time"][1],
                     cooling_rate=b["cooling_rate"][0])
    return float(lab_hours(slowest))


def _points(hours, fraction) -> tuple[np.ndarray, np.ndarray]:
    h = np.asarray(hours, dtype=float).ravel()
    f = np.asarray(fraction, dtype=float).ravel()
    if h.shape != f.shape:
        raise ValueError(f"hours and fraction must have the same length, got {h.size} and {f.size}")
    if not (np.isfinite(h).all() and np.isfinite(f).all()):
        raise ValueError("hours and fraction must be finite")
    return h, f


def pareto_front(hours, fraction) -> np.ndarray:
    """Indices of the non-dominated experiments (fewer hours and more performance are
    better), ordered by increasing hours (ties: the better fraction kept once).

    Args:
        hours: (k,) lab hours of each experiment, h.
        fraction: (k,) its buildable performance as a fraction of the oracle.
    """
    h, f = _points(hours, fraction)
    order = np.lexsort((-f, h))  # by hours, the best fraction first among equal hours
    front, best = [], -np.inf
    for i in order:
        if f[i] > best:
            front.append(int(i))
            best = f[i]
    return np.array(front, dtype=np.int64)


def hypervolume(hours, fraction, ref_hours: float | None = None) -> float:
    """Area dominated by the experiments in ``[0, ref_hours] x [0, 1]``, as a fraction of
    that box (fractions above 1 count as 1, below 0 as 0; experiments slower than
    ``ref_hours`` add nothing).

    Args:
        hours, fraction: as :func:`pareto_front`'s.
        ref_hours: the box's hour side, h (default :func:`reference_hours`).
    """
    ref = reference_hours() if ref_hours is None else float(ref_hours)
    if not (np.isfinite(ref) and ref > 0):
        raise ValueError(f"ref_hours must be a finite number > 0 h, got {ref_hours!r}")
    h, f = _points(hours, fraction)
    keep = h <= ref
    h, f = h[keep], np.clip(f[keep], 0.0, 1.0)
    idx = pareto_front(h, f)
    area = 0.0
    for k, i in enumerate(idx):  # a staircase: each front point's fraction up to the next point's hours
        right = h[idx[k + 1]] if k + 1 < len(idx) else ref
        area += (right - h[i]) * f[i]
    return float(area / ref)
