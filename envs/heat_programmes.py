"""The best single-dwell heat programme for one furnace load: FurnaceControl's yardstick.

A furnace load (``synthgap/FurnaceControl-v0``) fixes what is weighed, milled and pressed
(target, precursors, excess, milling time, atmosphere); the controller chooses only the
heat programme, within the load's time budget (ramp plus dwell), the controller's rate
limit and the furnace's temperature range, and the load cools at a fixed rate after
unloading. :func:`best_heat_programme` searches those programmes (one ramp, one dwell) for
the highest **buildable performance** (:mod:`synthgap.envs.buildable`: expected noise-free
performance over the furnace offsets, the one definition every score reads).

Read on the lab's belief (the nominal system) it is the reward's scale, so a reward of 1
reads "as good as the best programme the lab believes possible"; read on a lab's TRUE world
(:func:`synthgap.agents.oracle.furnace_oracle`, evaluation only) it is that world's oracle,
the denominator of every reported furnace score. A closed-loop schedule of several setpoints
may beat a single dwell slightly (a fraction above 1); the search is a grid then a local
refinement, deterministic, no random draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from .buildable import OFFSET_POINTS, buildable_performance
from .chemistry import ChemicalSystem, Recipe, RecipeBatch
from .chemistry.rate_kernels import PARALLEL_BATCH
from .chemistry.recipe import RECIPE_BOUNDS, ROOM_TEMPERATURE
from .lab.thermal import FURNACE_OFFSET_SD_K

__all__ = ["HeatProgrammeBest", "best_heat_programme"]

RAMPS_K_PER_MIN = (2.0, 5.0, 10.0, 20.0)  # the ramps tried (those up to the load's limit)
GRID_STEP_K = 25.0  # dwell-temperature grid, K
DWELL_TIMES = 16  # dwell times per (ramp, temperature), log-spaced from the shortest to the budget
SERIAL_RECIPES = (PARALLEL_BATCH - 1) // OFFSET_POINTS  # recipes per firing: (recipe, offset) rows below the threads'


@dataclass(frozen=True)
class HeatProgrammeBest:
    """The best single-dwell programme found for one load.

    Attributes:
        value: its buildable performance, in the target's property unit.
        recipe: the load's recipe with that programme (ramp K/min, dwell K and h, cooling K/min).
        n_evaluated: programmes scored (each at every quadrature offset).
    """

    value: float
    recipe: Recipe
    n_evaluated: int


def _time_budget_h(T: np.ndarray, ramp: np.ndarray, max_hours: float) -> np.ndarray:
    """(n,) hours of dwell left in the budget after ramping to ``T`` K at ``ramp`` K/min."""
    return max_hours - (T - ROOM_TEMPERATURE) / ramp / 60.0


def best_heat_programme(system: ChemicalSystem, load: Recipe, t_range: tuple[float, float], max_hours: float,
                        max_ramp: float, cooling_rate: float, sd: float = FURNACE_OFFSET_SD_K) -> HeatProgrammeBest:
    """The highest buildable performance of ``load`` over single-dwell heat programmes.

    Args:
        system: whose kinetics fire (the lab's belief for a reward, a true world for an oracle).
        load: the recipe whose target, precursors, excess, milling and atmosphere are kept;
            its ramp, dwell and cooling are replaced.
        t_range: (low, high) dwell setpoints the controller may choose, K.
        max_hours: the load's time budget in the furnace (ramp plus dwell), h.
        max_ramp: the controller's heating-rate limit, K/min.
        cooling_rate: the cooling after unloading, K/min.
        sd: furnace offset sd of the expectation, K.

    A ramp limit below the slowest ramp tried (2 K/min) is itself the one ramp tried.

    Raises ValueError for an empty temperature range, a rate limit, cooling rate or budget
    that is not a positive number, or a budget too short for the shortest dwell.
    """
    lo, hi = (float(v) for v in t_range)
    if not (math.isfinite(lo) and math.isfinite(hi) and ROOM_TEMPERATURE < lo <= hi):
        raise ValueError(f"t_range must be finite with {ROOM_TEMPERATURE} K < low <= high, got {t_range!r}")
    for name, value in (("max_ramp", max_ramp), ("cooling_rate", cooling_rate), ("max_hours", max_hours)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    ramps = tuple(r for r in RAMPS_K_PER_MIN if r <= max_ramp) or (float(max_ramp),)
    return _best(system, load, lo, hi, float(max_hours), ramps, float(cooling_rate), float(sd))


@lru_cache(maxsize=64)
def _best(system: ChemicalSystem, load: Recipe, lo: float, hi: float, max_hours: float,
          ramps: tuple[float, ...], cooling: float, sd: float) -> HeatProgrammeBest:
    t_min_h, t_max_h = RECIPE_BOUNDS["dwell_time"][:2]
    temps = np.unique(np.append(np.arange(lo, hi, GRID_STEP_K), hi))
    T, R = (a.ravel() for a in np.meshgrid(temps, np.asarray(ramps), indexing="ij"))
    budget = np.minimum(_time_budget_h(T, R, max_hours), t_max_h)
    ok = budget >= t_min_h
    if not ok.any():
        raise ValueError(f"a budget of {max_hours:g} h leaves no dwell of {t_min_h:g} h at any programme "
                         f"(ramps {ramps} K/min to {lo:g}-{hi:g} K)")
    T, R, budget = T[ok], R[ok], budget[ok]
    frac = np.linspace(0.0, 1.0, DWELL_TIMES)
    times = np.exp(np.log(t_min_h) + frac[None, :] * (np.log(budget) - np.log(t_min_h))[:, None])
    T, R, times = np.repeat(T, DWELL_TIMES), np.repeat(R, DWELL_TIMES), times.ravel()
    base = RecipeBatch.from_recipes(system, [replace(load, ramp_rate=ramps[0], dwell_temperature=lo,
                                                     dwell_time=t_min_h, cooling_rate=cooling)])

    def score(T: np.ndarray, R: np.ndarray, times: np.ndarray) -> np.ndarray:
        n = len(T)
        batch = RecipeBatch(**{k: np.repeat(getattr(base, k), n) for k in
                               ("target", "precursor_set", "excess", "milling_time", "cooling_rate", "atmosphere")},
                            ramp_rate=R, dwell_temperature=T, dwell_time=times)
        # in parts the serial kernel fires: an env (signals, forks) never enters a threaded region
        return np.concatenate([buildable_performance(system, batch.take(slice(i, i + SERIAL_RECIPES)), sd=sd)
                               for i in range(0, n, SERIAL_RECIPES)])

    values = score(T, R, times)
    n_eval = len(values)
    # local refinement around the best: temperatures within a grid step, dwell times within a factor 1.5
    for width_K, factor in ((GRID_STEP_K, 1.5), (GRID_STEP_K / 5, 1.15)):
        j = int(np.argmax(values))
        t_near = np.clip(T[j] + np.linspace(-width_K, width_K, 11), lo, hi)
        h_near = times[j] * np.exp(np.linspace(-np.log(factor), np.log(factor), 7))
        Tn, hn = (a.ravel() for a in np.meshgrid(t_near, h_near, indexing="ij"))
        Rn = np.full(len(Tn), R[j])
        hn = np.clip(hn, t_min_h, np.minimum(_time_budget_h(Tn, Rn, max_hours), t_max_h))
        keep = hn >= t_min_h
        vn = score(Tn[keep], Rn[keep], hn[keep])
        n_eval += len(vn)
        T, R, times = np.append(T, Tn[keep]), np.append(R, Rn[keep]), np.append(times, hn[keep])
        values = np.append(values, vn)
    j = int(np.argmax(values))
    best = replace(load, ramp_rate=float(R[j]), dwell_temperature=float(T[j]), dwell_time=float(times[j]),
                   cooling_rate=cooling)
    return HeatProgrammeBest(float(values[j]), best, n_eval)
