"""Lab factories: what every env calls at ``reset`` for a fresh lab, ``(system, seed) -> Lab``.

Each is a small frozen dataclass, so an env made with one pickles (vector envs, SB3's
subprocess workers). The default of ``Campaign-v0`` and the shared lab is the SimPy twin
(:class:`SimLabFactory`); ``FurnaceControl-v0``'s is the direct backend
(:class:`DirectLabFactory`: one load at a time needs no event queue). A hardware lab is
passed to an env as ``lab=`` instead: it is one lab, not one per episode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .chemistry import ChemicalSystem
from .lab.thermal import FURNACE_OFFSET_SD_K
from .lab.world import DEFAULT_WORLD_SPREAD, draw_parameters, draw_world, world_system

if TYPE_CHECKING:
    from .lab.frontend import Lab

__all__ = ["LabFactory", "SimLabFactory", "DirectLabFactory"]

#: makes a fresh lab for an episode: ``(system, seed) -> Lab``; the envs' ``lab_factory`` argument.
LabFactory = Callable[[ChemicalSystem, int], "Lab"]


@dataclass(frozen=True)
class SimLabFactory:
    """Makes a fresh SimPy twin (:class:`~synthgap.envs.lab.simlab.SimLab`) per episode, in a
    world of its own.

    Attributes:
        n_furnaces: furnaces of the twin.
        world_spread: the hidden world's spread around the nominal model
            (:mod:`synthgap.envs.lab.world`; 0: the nominal world, the same every episode).
    """

    n_furnaces: int = 2
    world_spread: float = DEFAULT_WORLD_SPREAD

    def __call__(self, system: ChemicalSystem, seed: int) -> Lab:
        from .lab.simlab import SimLab

        return SimLab(system, n_furnaces=self.n_furnaces, seed=seed,
                      world=draw_world(system, seed, self.world_spread))


@dataclass(frozen=True)
class DirectLabFactory:
    """Makes a fresh direct lab (:class:`~synthgap.envs.lab.direct.DirectBackend`) per episode,
    in a world of its own.

    Attributes:
        offset_sd_K: the furnace's calibration offset per firing, K (standard deviation; the
            world scales it like the twin's).
        world_spread: as :class:`SimLabFactory`'s.
    """

    offset_sd_K: float = FURNACE_OFFSET_SD_K
    world_spread: float = DEFAULT_WORLD_SPREAD

    def __call__(self, system: ChemicalSystem, seed: int) -> Lab:
        from .lab.direct import DirectBackend
        from .lab.frontend import Lab

        draw = draw_parameters(system, seed, self.world_spread)  # the twin's world for this seed, without its LabParams
        truth = world_system(system, draw) if self.world_spread else system
        return Lab(DirectBackend(system, seed, offset_sd_K=self.offset_sd_K * draw.scales["offset_sd"],
                                 truth_system=truth))
