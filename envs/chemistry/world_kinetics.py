"""A drawn world's reaction network: its nominal network with other rate constants.

A world (:mod:`synthgap.envs.lab.world`) keeps the nominal system's phases, reactions and
thermochemistry and draws other Arrhenius parameters. :class:`WorldNetwork` fires it on the
nominal network's compiled tables with the world's rate constants applied per step
(:class:`~.world_rates.WorldKinetics`, microseconds to make: a lab per episode draws one);
the first time a batch of ``MATERIALISE_BATCH`` or more samples fires, it builds its own
tables instead (each rate column scaled by k_world(T) / k_nominal(T), about 0.4 ms), which
are faster per sample from then on. Both give the same numbers (to rounding: a test).
"""

from __future__ import annotations

import weakref

import numpy as np

from .kinetics import ReactionNetwork
from .system_model import ChemicalSystem
from .world_rates import WorldKinetics

__all__ = ["MATERIALISE_BATCH", "WorldNetwork", "with_kinetics"]

#: samples in one call from which a world's network builds its own rate tables (the
#: per-step rate constants cost about 1.5 us a sample more; the tables about 0.4 ms once)
MATERIALISE_BATCH = 256


class WorldNetwork(ReactionNetwork):
    """``nominal``'s network in the world ``system`` (the same phases and reactions, other
    Arrhenius parameters): see the module docstring.

    Raises:
        ValueError: ``system`` has other phases or reaction equations than ``nominal``'s.
    """

    def __init__(self, nominal: ReactionNetwork, system: ChemicalSystem) -> None:  # no compilation: a view
        old = nominal.system
        same = system.structure is old.structure  # a world drawn with ChemicalSystem.with_rates: checked there
        if not same and (system.solids != old.solids or len(system.reactions) != len(old.reactions)
                         or any(a.reaction.coefficients != b.reaction.coefficients
                                for a, b in zip(system.reactions, old.reactions, strict=True))
                         or tuple(system.volatiles) != tuple(old.volatiles)):
            raise ValueError(f"{system.name}: not the same phases and reactions as the network's {old.name}")
        self.__dict__.update(nominal.__dict__)
        del self.__dict__["system"]
        # weak: the registry (firing.register_world) keys this network on its world, so a strong
        # reference would keep every world drawn in a training run alive
        self._world_ref = weakref.ref(system)
        #: the world's rate constants relative to the nominal tables (1 row), None once materialised
        self.world: WorldKinetics | None = WorldKinetics.of(old, [system])
        self._world_tables: dict[int, tuple] = {}  # batch -> this world's kernel tables (no per-sample worlds)

    @property
    def system(self) -> ChemicalSystem:  # type: ignore[override]
        """The world this network fires (held weakly: keep the system while you use its network)."""
        system = self._world_ref()
        if system is None:
            raise ReferenceError("the world system of this network was freed; keep the system while firing it")
        return system

    def _tables(self, worlds: WorldKinetics | None, batch: int) -> tuple:
        if self.world is not None and batch >= MATERIALISE_BATCH:
            self._materialise()
        if self.world is not None and worlds is None:  # a furnace session asks again every interval
            tables = self._world_tables.get(batch)
            if tables is None:
                tables = self._world_tables[batch] = super()._tables(self.world.take(np.zeros(batch, dtype=np.int64)),
                                                                     batch)
            return tables
        if self.world is not None:  # this world's constants for every sample, on top of any per-sample ones
            mine = self.world.take(np.zeros(batch, dtype=np.int64))
            worlds = mine if worlds is None else WorldKinetics(mine.reactions + worlds.reactions,
                                                               mine.volatiles + worlds.volatiles,
                                                               mine.grain + worlds.grain)
        return super()._tables(worlds, batch)

    def _materialise(self) -> None:
        """Scale the nominal tables by this world's rate constants, once."""
        grid = self.grid
        w = self.world
        n_atm, n_r = len(self.atmospheres), len(self.system.reactions)

        def scale(rel: np.ndarray) -> np.ndarray:  # (K, 2) ln A ratio, dEa / R -> (grid, K)
            return np.exp(rel[None, :, 0] - rel[None, :, 1] / grid[:, None])

        self.rate_table = (self.rate_table.reshape(n_atm, self.n_grid, n_r) * scale(w.reactions[0])[None]
                           ).reshape(self.rate_table.shape)
        self.volatile_table = self.volatile_table * scale(w.volatiles[0]).T
        self.grain_table = self.grain_table * scale(w.grain)[:, 0]
        self.world = None
        self._world_tables.clear()


def with_kinetics(net: ReactionNetwork, system: ChemicalSystem) -> ReactionNetwork:
    """``net`` with the Arrhenius parameters of ``system`` (a world drawn around ``net``'s
    system): a :class:`WorldNetwork` (it holds ``system`` weakly: keep the system alive)."""
    return WorldNetwork(net, system)

