"""A drawn world's reaction network: its nominal network with other rate constants.

A world (:mod:`synthgap.envs.lab.world`) keeps the nominal system's phases, reactions and
thermochemistry and draws other Arrhenius parameters, so its network is the nominal one
with each rate column scaled by k_world(T) / k_nominal(T): milliseconds, not a compilation.
"""

from __future__ import annotations

import copy

import numpy as np

from .kinetics import T_GRID_MAX, T_GRID_MIN, T_GRID_STEP, ReactionNetwork
from .system_model import ChemicalSystem
from .tables import R_GAS

__all__ = ["with_kinetics"]


def with_kinetics(net: ReactionNetwork, system: ChemicalSystem) -> ReactionNetwork:
    """``net`` with the Arrhenius parameters of ``system``: the same phases and
    reactions (a world drawn around this one), so only the rate tables change (each
    column scaled by k_new(T) / k_old(T); the driving forces are kept).

    Raises:
        ValueError: ``system`` has other phases or reaction equations.
    """
    old = net.system
    if (system.solids != old.solids or len(system.reactions) != len(old.reactions)
            or any(a.reaction.coefficients != b.reaction.coefficients
                   for a, b in zip(system.reactions, old.reactions, strict=True))
            or tuple(system.volatiles) != tuple(old.volatiles)):
        raise ValueError(f"{system.name}: not the same phases and reactions as the network's {old.name}")
    grid = np.arange(T_GRID_MIN, T_GRID_MAX + T_GRID_STEP / 2, T_GRID_STEP)

    def ratio(Ea_new: float, A_new: float, Ea_old: float, A_old: float) -> np.ndarray:
        return (A_new / A_old) * np.exp(-(Ea_new - Ea_old) / (R_GAS * grid))

    new = copy.copy(net)
    new.system = system
    d_ea = np.array([a.activation_energy - b.activation_energy for a, b in zip(system.reactions, old.reactions,
                                                                              strict=True)])
    a_ratio = np.array([a.prefactor / b.prefactor for a, b in zip(system.reactions, old.reactions, strict=True)])
    scale = a_ratio[None, :] * np.exp(-d_ea[None, :] / (R_GAS * grid[:, None]))  # (grid, R)
    n_atm, n_r = len(net.atmospheres), len(system.reactions)
    new.rate_table = (net.rate_table.reshape(n_atm, net.n_grid, n_r) * scale[None]).reshape(net.rate_table.shape)
    new.volatile_table = net.volatile_table * np.array(
        [ratio(*system.volatiles[n], *old.volatiles[n]) for n in old.volatiles]).reshape(net.volatile_table.shape)
    new.grain_table = net.grain_table * ratio(*system.grain_growth, *old.grain_growth)
    return new
