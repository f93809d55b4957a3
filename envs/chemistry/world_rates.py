"""Per-sample rate constants: a batch of samples, each in its own drawn world of one system.

A drawn world (:mod:`synthgap.envs.lab.world`) keeps its nominal system's phases and
reactions and has other Arrhenius parameters. :class:`WorldKinetics` holds them for a batch
as ratios to the nominal ones, which the kinetics kernels apply per sample and step
(:meth:`~.kinetics.ReactionNetwork.integrate`, ``worlds=``): one compiled network fires a
batch of worlds in one call.

Units: ln of a ratio (dimensionless), K.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .system_model import ChemicalSystem
from .tables import R_GAS

__all__ = ["WorldKinetics"]


@dataclass(frozen=True)
class WorldKinetics:
    """Each sample's own Arrhenius parameters, relative to a network's (a batch of campaigns,
    each in its own drawn world): ``k_sample(T) = k_network(T) * exp(ln_a - dea_K / T)``.

    Attributes:
        reactions: (B, R, 2): per reaction, ln(A_world / A_nominal) and (Ea_world - Ea_nominal) / R, K.
        volatiles: (B, V, 2): the same for each volatile solid's evaporation.
        grain: (B, 2): the same for grain growth.
    """

    reactions: np.ndarray
    volatiles: np.ndarray
    grain: np.ndarray

    def __len__(self) -> int:
        return int(self.reactions.shape[0])

    @classmethod
    def nominal(cls, system: ChemicalSystem, batch: int) -> WorldKinetics:
        """``batch`` samples in ``system``'s own world (every ratio 1)."""
        return cls(np.zeros((batch, len(system.reactions), 2)), np.zeros((batch, len(system.volatiles), 2)),
                   np.zeros((batch, 2)))

    @classmethod
    def of(cls, nominal: ChemicalSystem, worlds: list[ChemicalSystem]) -> WorldKinetics:
        """The parameters of drawn ``worlds`` (systems with ``nominal``'s reactions) relative to ``nominal``."""
        def rel(Ea: float, A: float, Ea0: float, A0: float) -> tuple[float, float]:
            return math.log(A / A0), (Ea - Ea0) / R_GAS

        return cls(
            np.array([[rel(r.activation_energy, r.prefactor, r0.activation_energy, r0.prefactor)
                       for r, r0 in zip(w.reactions, nominal.reactions, strict=True)] for w in worlds]
                     ).reshape(len(worlds), len(nominal.reactions), 2),
            np.array([[rel(*w.volatiles[n], *nominal.volatiles[n]) for n in nominal.volatiles] for w in worlds]
                     ).reshape(len(worlds), len(nominal.volatiles), 2),
            np.array([rel(*w.grain_growth, *nominal.grain_growth) for w in worlds]).reshape(len(worlds), 2))

    def take(self, idx: np.ndarray) -> WorldKinetics:
        """The rows ``idx``."""
        return WorldKinetics(self.reactions[idx], self.volatiles[idx], self.grain[idx])

    def arrays(self, n_reactions: int, n_volatiles: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The kernels' arrays, checked against a network of ``n_reactions`` and ``n_volatiles``.

        Raises:
            ValueError: the shapes do not fit the network.
        """
        B = len(self)
        want = ((B, n_reactions, 2), (B, n_volatiles, 2), (B, 2))
        got = (self.reactions.shape, self.volatiles.shape, self.grain.shape)
        if got != want:
            raise ValueError(f"world kinetics of shapes {got} do not fit a network of {n_reactions} reactions "
                             f"and {n_volatiles} volatiles (want {want})")
        return tuple(np.ascontiguousarray(a, dtype=float) for a in (self.reactions, self.volatiles, self.grain))
