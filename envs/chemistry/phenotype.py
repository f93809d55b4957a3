"""The phenotype: a fired sample's measured property follows from what is in it.

Two samples of one formula differ: impurity phases dilute and disrupt the property,
and the grain size set by the firing history moves it away from (or towards) its
optimum. The formula alone gives only the theoretical value (the 0 K view).
"""

from __future__ import annotations

import numpy as np

from .catalogue import ChemicalSystem
from .system_model import per_structure


def performance(
    system: ChemicalSystem,
    target_index: np.ndarray,
    target_fraction: np.ndarray,
    grain_size: np.ndarray,
) -> np.ndarray:
    """Measured property of each sample (noise-free), in the target's unit.

    performance = theoretical * purity**purity_exponent
                  * exp(-ln(grain / optimal_grain)**2 / (2 grain_tolerance**2))

    Args:
        system: the chemical system.
        target_index: (B,) int, index into ``system.targets``.
        target_fraction: (B,) weight fraction of the target phase, 0 to 1.
        grain_size: (B,) um.
    """
    table = _model_table(system)[:, target_index]
    theo, expo, opt, tol = table
    purity = np.minimum(np.maximum(target_fraction, 0.0), 1.0) ** expo
    grain = np.exp(-np.log(np.maximum(grain_size, 1e-6) / opt) ** 2 / (2 * tol**2))
    return theo * purity * grain


@per_structure(maxsize=32)
def _model_table(system: ChemicalSystem) -> np.ndarray:
    """(4, n_targets): theoretical, purity exponent, optimal grain, grain tolerance."""
    models = [t.performance for t in system.targets.values()]
    return np.array([[m.theoretical, m.purity_exponent, m.optimal_grain, m.grain_tolerance] for m in models]).T


def theoretical_performance(system: ChemicalSystem, target: str) -> float:
    """What a predictor that reads only the formula scores a target with."""
    return system.targets[target].performance.theoretical
