"""Markov chains behind the calibration's intervals: adaptive random-walk Metropolis, every
chain's proposal evaluated in one batched call (:mod:`.kinetic_calibration` fires them all
together)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["CHAINS", "CHAIN_STEPS", "posterior_intervals"]

CHAINS, CHAIN_STEPS = 64, 300  # Metropolis chains behind the intervals, and their length
ADAPT_EVERY, TARGET_ACCEPTANCE = 10, 0.234  # burn-in: the proposal's scale is tuned every 10 steps toward 0.234
CHAIN_SEED = 20261203


def posterior_intervals(v: np.ndarray, laplace: np.ndarray, log_post: Callable[[np.ndarray], np.ndarray],
                        chains: int = CHAINS, steps: int = CHAIN_STEPS
                        ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """95 % intervals of every parameter from a Markov chain sample of the posterior
    ``log_post`` ((K, d) points -> (K,) log densities, up to a constant; one batched call per step).

    The Laplace approximation is too sure where routes compete (two reactions that make the
    same product trade places along a curved ridge), and a proposal shaped by it alone left
    chains stuck (2-3 % acceptance in some worlds). :data:`CHAINS` random-walk Metropolis
    chains, started from Laplace draws, step together (every chain's proposal fired in one
    batched call). The first third of each chain is burn-in, where the proposal adapts
    (Haario, Saksman & Tamminen 2001; Roberts, Gelman & Gilks 1997): its scale moves toward
    a 0.234 acceptance every :data:`ADAPT_EVERY` steps, and halfway through, its shape
    becomes the chains' own covariance. After burn-in it is fixed, so the kept sample is a
    valid Metropolis chain. Returns (low, high, acceptance rate after burn-in, the most
    probable point: ``v`` or a chain's state with a higher posterior, which the optimiser
    missed where the rate laws make the fit uneven).
    """
    rng = np.random.default_rng(CHAIN_SEED)
    n_par = len(v)
    chol = np.linalg.cholesky(laplace)
    scale = 2.38 / math.sqrt(n_par)

    burn_in = steps // 3
    x = v + rng.standard_normal((chains, n_par)) @ chol.T
    lp = log_post(x)
    best, best_lp = v.copy(), float(log_post(v[None])[0])
    kept, accepted, window, seen = [], 0, 0, []
    for t in range(steps):
        prop = x + scale * (rng.standard_normal((chains, n_par)) @ chol.T)
        lpp = log_post(prop)
        ok = np.log(rng.random(chains)) < lpp - lp
        x[ok], lp[ok] = prop[ok], lpp[ok]
        if lp.max() > best_lp:
            best, best_lp = x[int(lp.argmax())].copy(), float(lp.max())
        if t >= burn_in:
            kept.append(x.copy())
            accepted += int(ok.sum())
            continue
        window += int(ok.sum())
        seen.append(x.copy())
        if (t + 1) % ADAPT_EVERY == 0:  # toward the target acceptance
            scale *= math.exp(window / (chains * ADAPT_EVERY) - TARGET_ACCEPTANCE)
            window = 0
        if t + 1 == burn_in // 2:  # the chains' own covariance as the proposal's shape
            emp = np.cov(np.concatenate(seen[len(seen) // 2:]), rowvar=False)
            chol = np.linalg.cholesky(emp + 1e-9 * np.eye(n_par))
            scale = 2.38 / math.sqrt(n_par)
    low, high = np.quantile(np.concatenate(kept), [0.025, 0.975], axis=0)
    return low, high, accepted / (chains * (steps - burn_in)), best
