"""The oracle: the best buildable performance achievable, from the ground truth.

Buildable performance is defined once, in :mod:`synthgap.envs.buildable` (expected
noise-free performance over the lab's furnace offsets, the whole programme shifted); the
oracle is its best value over the candidate targets of a campaign, and every report
divides by it (:func:`~synthgap.envs.buildable.fraction_of_oracle`).

The search is dense and batched: many random recipes (the planners' own space), the best
by plain performance re-scored by buildable performance, then a few rounds of local
refinement (Gaussian steps in the unit box, shrinking) around the elites. Nothing here
is available to a planner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from synthgap.envs.buildable import OFFSET_POINTS, buildable_performance
from synthgap.envs.chemistry import ChemicalSystem, fire, random_recipes

from .space import RecipeSpace

__all__ = ["OracleResult", "buildable_performance", "campaign_oracle", "compute_oracle"]


@dataclass(frozen=True)
class OracleResult:
    """The oracle of a system's candidate targets.

    Attributes:
        system: system name.
        value: best buildable performance found, in the target's unit (that of ``recipe``).
        recipe: the recipe achieving it (``Recipe.to_dict()``).
        theoretical: that target's theoretical performance.
        n_evaluated: recipes fired (offsets included).
        targets: the candidate targets searched over.
    """

    system: str
    value: float
    recipe: dict
    theoretical: float
    n_evaluated: int
    targets: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)


def compute_oracle(system: ChemicalSystem, n_random: int = 200_000, n_top: int = 256,
                   n_elite: int = 16, rounds: int = 8, n_local: int = 32,
                   seed: int = 0, targets: Sequence[str] | None = None) -> OracleResult:
    """Dense batched search for the best buildable performance of ``system``.

    Args:
        targets: the campaign's candidate targets; default every target of the system.
        n_random: random recipes scored by plain performance.
        n_top: of those, how many are re-scored by buildable performance.
        n_elite: elites refined locally.
        rounds: refinement rounds (step size halves every two rounds).
        n_local: perturbations per elite per round.
        seed: the oracle's own seed (independent of any campaign).
    """
    if targets is not None and set(targets) == set(system.targets):
        targets = None  # every target: the same search as the benchmark's
    rng = np.random.default_rng(seed)
    space = RecipeSpace(system, targets)
    n_eval = 0
    # 1. random screen on plain performance
    keep_X, keep_p = np.zeros((0, space.d)), np.zeros(0)
    chunk = 20_000
    for i in range(0, n_random, chunk):
        m = min(chunk, n_random - i)
        b = random_recipes(system, m, rng) if targets is None else space.decode_batch(space.sample(m, rng))
        p = fire(system, b).performance
        n_eval += len(b)
        X = space.encode_batch(b.take(np.argsort(p)[-n_top:]))
        keep_X = np.concatenate([keep_X, X])
        keep_p = np.concatenate([keep_p, np.sort(p)[-n_top:]])
        top = np.argsort(keep_p)[-n_top:]
        keep_X, keep_p = keep_X[top], keep_p[top]
    # 2. buildable re-score
    values = buildable_performance(system, space.decode_batch(keep_X))
    n_eval += len(keep_X) * OFFSET_POINTS
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
        n_eval += len(cand) * OFFSET_POINTS
        allX, allv = np.concatenate([elite_X, cand]), np.concatenate([elite_v, v])
        top = np.argsort(allv)[::-1][:n_elite]
        elite_X, elite_v = allX[top], allv[top]
        if r % 2 == 1:
            step /= 2
    best = space.decode(elite_X[0])
    value = float(buildable_performance(system, best)[0])  # of the recipe reported, exactly
    return OracleResult(system.name, value, best.to_dict(),
                        float(system.targets[best.target].performance.theoretical), n_eval + OFFSET_POINTS,
                        tuple(space.targets))


@lru_cache(maxsize=32)
def _campaign_oracle(system: ChemicalSystem, candidates: tuple[str, ...], n_random: int) -> OracleResult:
    return compute_oracle(system, n_random=n_random, targets=candidates)


def campaign_oracle(system: ChemicalSystem, candidates: Sequence[str] | None = None,
                    n_random: int = 200_000) -> OracleResult:
    """The oracle of a campaign: the best buildable performance over its candidate targets.

    Computed once per process for each (system, candidates, n_random). ``candidates``
    None: every target of the system (the benchmark's campaigns).
    """
    key = tuple(system.targets) if candidates is None else tuple(candidates)
    return _campaign_oracle(system, key, n_random)
