"""A furnace load fired interval by interval: the kinetics continued step after step.

:func:`~synthgap.envs.chemistry.fire` fires a whole temperature history at once. A furnace
driven live (a controller deciding each interval's setpoint, ``FurnaceControl-v0``) needs the
state between intervals: the amounts, the grain size and the mass the load has lost (what a
thermogravimetric balance would read). :class:`IncrementalFiring` holds that state and
continues :meth:`~synthgap.envs.chemistry.kinetics.ReactionNetwork.integrate` from it; its
:meth:`~IncrementalFiring.outcome` is computed exactly as ``fire`` computes a sample
(:func:`~synthgap.envs.chemistry.firing.samples_from_state`).

Units: K, s, mol per mol of target intended, um.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .catalogue import ChemicalSystem
from .firing import FiredSamples, network_for, samples_from_state
from .kinetics import KineticState, milling_rate_factor
from .recipe import Recipe, RecipeBatch

__all__ = ["IncrementalFiring"]


class IncrementalFiring:
    """The chemistry of one furnace load, continued interval by interval.

    Args:
        system: the chemical system.
        recipes: the load's recipes (B); their targets and milling times are used.
        initial: (B, P) mol of each solid (``network_for(system).solids`` order) in each crucible.
        atmosphere: the furnace atmosphere for the whole firing.

    Attributes:
        state: the kinetic state after the last interval.
        mass0_g: (B,) g per mol of target intended, the load's initial mass.
    """

    def __init__(self, system: ChemicalSystem, recipes: Sequence[Recipe], initial: np.ndarray,
                 atmosphere: str) -> None:
        self.system = system
        self.net = network_for(system)
        self.batch = RecipeBatch.from_recipes(system, [replace(r, atmosphere=atmosphere) for r in recipes],
                                              validate=False)
        self.initial = np.array(initial, dtype=float, copy=True)
        B = len(self.batch)
        if self.initial.shape != (B, len(self.net.solids)):
            raise ValueError(f"initial amounts must have shape {(B, len(self.net.solids))}, got {self.initial.shape}")
        self._rate = milling_rate_factor(self.batch.milling_time)
        self.mass0_g = self.initial @ self.net.molar_mass
        self._mass0_total = float(self.mass0_g.sum())
        self.state = KineticState(self.initial.copy(), np.zeros((B, len(self.net.gases))),
                                  np.zeros_like(self.initial), None)
        self.time_s = 0.0
        self.steps = 0  # steps fired so far (the kernels alternate the reactions' order step by step)
        self.sintering_work = np.zeros(B)  # s/K, the master sintering curve's Theta so far

    def react(self, temperature_K: np.ndarray, dt_s: np.ndarray) -> None:
        """Continue through steps of true sample temperature ``temperature_K`` (S,) K lasting ``dt_s`` (S,) s
        (the same history for every crucible of the load)."""
        T = np.asarray(temperature_K, dtype=float)
        dt = np.asarray(dt_s, dtype=float)
        if T.ndim != 1 or T.shape != dt.shape or T.size == 0:
            raise ValueError(f"temperature_K and dt_s must be equal non-empty 1-D arrays, got {T.shape}, {dt.shape}")
        B = len(self.batch)  # every crucible sees the same history (a writable view for one: the kernels write)
        T2, dt2 = (T[None, :], dt[None, :]) if B == 1 else (np.repeat(T[None, :], B, 0), np.repeat(dt[None, :], B, 0))
        step = self.net.integrate(self.state.amounts, T2, dt2, self.batch.atmosphere, self._rate,
                                  self.state.grain_size, layer=self.state.layer,  # the product layers grow on
                                  first_step=self.steps)
        self.state = KineticState(step.amounts, self.state.gas_released + step.gas_released,
                                  self.state.volatilized + step.volatilized, step.grain_size, step.layer)
        self.time_s += float(dt.sum())
        self.steps += T.size
        if self.system.sintering is not None:
            self.sintering_work = self.sintering_work + self.system.sintering.work_of_trace(T, dt)

    @property
    def mass_loss(self) -> np.ndarray:
        """(B,) fraction of each crucible's initial mass lost so far (gas released, volatilised)."""
        return 1.0 - (self.state.amounts @ self.net.molar_mass) / self.mass0_g

    @property
    def load_mass_loss(self) -> float:
        """Fraction of the whole load's initial mass lost so far (what a TGA balance reads);
        NaN for a load without mass."""
        if self._mass0_total <= 0:
            return math.nan
        return float((self.mass_loss * self.mass0_g).sum() / self._mass0_total)

    def outcome(self) -> FiredSamples:
        """The load as it stands: phase fractions, target fraction, grain size, property."""
        state = self.state
        if state.grain_size is None:  # not fired yet: fresh crystallites
            fresh = self.net.integrate(state.amounts, np.zeros((len(self.batch), 0)), np.zeros((len(self.batch), 0)),
                                       self.batch.atmosphere, self._rate)
            state = replace(state, grain_size=fresh.grain_size)
        return samples_from_state(self.system, self.batch, state, self.initial, self.sintering_work)
