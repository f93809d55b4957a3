"""The phenotype: a fired sample's measured property follows from what is in it.

Two samples of one formula differ: impurity phases dilute the property by the mixing
rule of the target's performance block (:mod:`.property_rules`: permittivities mix
logarithmically, losses add, only active phases store charge, pores scatter light),
the pores left by sintering (:mod:`.sintering`) enter as a phase of their own, and the
grain size set by the firing history moves the property away from (or towards) its
optimum. The formula alone gives only the theoretical value (the 0 K view).
"""

from __future__ import annotations

import numpy as np

from .catalogue import ChemicalSystem
from .system_model import per_structure


def performance(
    system: ChemicalSystem,
    target_index: np.ndarray,
    phase_fractions: np.ndarray,
    target_fraction: np.ndarray,
    grain_size: np.ndarray,
    density: np.ndarray | None,
) -> np.ndarray:
    """Measured property of each sample (noise-free), in the target's unit.

    Args:
        system: the chemical system.
        target_index: (B,) int, index into ``system.targets``.
        phase_fractions: (B, P) weight fractions of the solids (``system.solids`` order).
        target_fraction: (B,) weight fraction of each sample's target, 0 to 1.
        grain_size: (B,) um.
        density: (B,) relative density, 0 to 1; None (or NaN) for a system without a
            sintering block (its rules do not use porosity: the loader checks).
    """
    target_index = np.asarray(target_index)
    B = len(target_index)
    porosity = np.zeros(B) if density is None else np.nan_to_num(1.0 - np.asarray(density, dtype=float))
    wt = np.clip(target_fraction, 0.0, 1.0)
    # (B, n_targets): each sample against every target's vector; each row keeps its own target's
    every = np.clip(phase_fractions, 0.0, 1.0) @ _phase_vectors(system).T
    mixed = every[:, 0] if every.shape[1] == 1 else np.take_along_axis(every, target_index[:, None], 1)[:, 0]
    out = np.empty(B)
    for k, target in enumerate(system.targets.values()):
        rows = target_index == k
        if rows.all():
            rows = slice(None)
        elif not rows.any():
            continue
        model = target.performance
        out[rows] = model.rule.combine(model.theoretical, mixed[rows], wt[rows], grain_size[rows], porosity[rows])
    return out


@per_structure(maxsize=32)
def _phase_vectors(system: ChemicalSystem) -> np.ndarray:
    """(n_targets, P): each target's rule's per-phase quantity over the system's solids."""
    return np.array([t.performance.rule.phase_vector(system.solids, t.phase) for t in system.targets.values()])


def theoretical_performance(system: ChemicalSystem, target: str) -> float:
    """What a predictor that reads only the formula scores a target with."""
    return system.targets[target].performance.theoretical
