"""The oracle: the best expected buildable performance of a system, from the ground truth.

*Buildable performance* of a recipe is its noise-free performance averaged over the
furnace offsets a lab will actually see: the dwell (and the programme, in proportion)
shifted by offsets of N(0, FURNACE_OFFSET_SD_K = 10 K), evaluated at ``N_OFFSETS`` fixed quantiles of that
normal (deterministic, low-variance). A recipe that only works at exactly its setpoint
scores low. (The environments' reward, :mod:`synthgap.envs.reward`, judges one measured
sample against the same drift band: measured performance x success probability.)

The oracle searches densely with batched :func:`~synthgap.envs.chemistry.fire`: many
random recipes (the planners' own space), the best by plain performance re-scored by
buildable performance, then a few rounds of local refinement (Gaussian steps in the unit
box, shrinking) around the elites. Nothing here is available to a planner.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import norm

from synthgap.envs.chemistry import ChemicalSystem, RecipeBatch, fire, random_recipes

from .evaluator import FURNACE_OFFSET_SD, shifted_trace
from .space import RecipeSpace

N_OFFSETS = 16  # quantiles of the offset distribution averaged over


def drift_offsets(n: int = N_OFFSETS, sd: float = FURNACE_OFFSET_SD) -> np.ndarray:
    """(n,) K: the mid-quantiles of N(0, sd), the offsets buildable performance averages."""
    return sd * norm.ppf((np.arange(n) + 0.5) / n)


def _repeat(batch: RecipeBatch, k: int) -> RecipeBatch:
    return RecipeBatch(**{f: np.repeat(getattr(batch, f), k) for f in batch.__dataclass_fields__})


def performance_at_offsets(system: ChemicalSystem, batch: RecipeBatch, offsets: np.ndarray,
                           chunk: int = 20_000) -> np.ndarray:
    """(B, K) noise-free performance of each recipe at each furnace offset (K,) K."""
    offsets = np.asarray(offsets, dtype=float)
    k = len(offsets)
    rep = _repeat(batch, k)
    off = np.tile(offsets, len(batch))
    out = np.empty(len(rep))
    for i in range(0, len(rep), chunk):
        sl = slice(i, i + chunk)
        part = rep.take(sl)
        out[sl] = fire(system, part, trace=shifted_trace(part, off[sl])).performance
    return out.reshape(len(batch), k)


def buildable_performance(system: ChemicalSystem, batch: RecipeBatch,
                          offsets: np.ndarray | None = None) -> np.ndarray:
    """(B,) expected performance of each recipe over furnace offset drift."""
    offsets = drift_offsets() if offsets is None else offsets
    if len(batch) == 0:
        return np.zeros(0)
    return performance_at_offsets(system, batch, offsets).mean(axis=1)


@dataclass(frozen=True)
class OracleResult:
    """The oracle of one system.

    Attributes:
        system: system name.
        value: best expected buildable performance found, in the target's unit.
        recipe: the recipe achieving it (``Recipe.to_dict()``).
        theoretical: that target's theoretical performance.
        n_evaluated: recipes fired (offsets included).
    """

    system: str
    value: float
    recipe: dict
    theoretical: float
    n_evaluated: int

    def to_dict(self) -> dict:
        return asdict(self)


def compute_oracle(system: ChemicalSystem, n_random: int = 200_000, n_top: int = 256,
                   n_elite: int = 16, rounds: int = 8, n_local: int = 32,
                   seed: int = 0) -> OracleResult:
    """Dense batched search for the best buildable performance of ``system``.

    Args:
        n_random: random recipes scored by plain performance.
        n_top: of those, how many are re-scored by buildable performance.
        n_elite: elites refined locally.
        rounds: refinement rounds (step size halves every two rounds).
        n_local: perturbations per elite per round.
        seed: the oracle's own seed (independent of any campaign).
    """
    rng = np.random.default_rng(seed)
    space = RecipeSpace(system)
    n_eval = 0
    # 1. random screen on plain performance
    keep_X, keep_p = np.zeros((0, space.d)), np.zeros(0)
    chunk = 20_000
    for i in range(0, n_random, chunk):
        b = random_recipes(system, min(chunk, n_random - i), rng)
        p = fire(system, b).performance
        n_eval += len(b)
        X = space.encode_batch(b.take(np.argsort(p)[-n_top:]))
        keep_X = np.concatenate([keep_X, X])
        keep_p = np.concatenate([keep_p, np.sort(p)[-n_top:]])
        top = np.argsort(keep_p)[-n_top:]
        keep_X, keep_p = keep_X[top], keep_p[top]
    # 2. buildable re-score
    values = buildable_performance(system, space.decode_batch(keep_X))
    n_eval += len(keep_X) * N_OFFSETS
    order = np.argsort(values)[::-1][:n_elite]
    elite_X, elite_v = keep_X[order], values[order]
    # 3. local refinement of the continuous coordinates
    n_cont = space.d - 2
    step = 0.05
    for r in range(rounds):
        cand = np.repeat(elite_X, n_local, axis=0)
        cand[:, :n_cont] += rng.normal(0.0, step, (len(cand), n_cont))
        cand[:, :n_cont] = np.clip(cand[:, :n_cont], 0.0, 1.0)
        # now and then try another atmosphere
        flip = rng.random(len(cand)) < 0.1
        cand[flip, space.index("atmosphere")] = rng.random(flip.sum())
        v = buildable_performance(system, space.decode_batch(cand))
        n_eval += len(cand) * N_OFFSETS
        allX, allv = np.concatenate([elite_X, cand]), np.concatenate([elite_v, v])
        top = np.argsort(allv)[::-1][:n_elite]
        elite_X, elite_v = allX[top], allv[top]
        if r % 2 == 1:
            step /= 2
    best = space.decode(elite_X[0])
    return OracleResult(system.name, float(elite_v[0]), best.to_dict(),
                        float(system.targets[best.target].performance.theoretical), n_eval)
