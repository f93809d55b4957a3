"""Solid-state reaction kinetics, vectorised over a batch of samples.

Each reaction r of a system's network advances with

    d xi_r / dt = k_r(T) * D_r(T, p) * m * F_r

* k_r(T) = A_r exp(-Ea_r / R T), Arrhenius, 1/s;
* D_r = tanh(-dG_r / (n_r * g_ref)): the thermodynamic driving force per atom, in (-1, 1);
  a reaction runs forward only when dG < 0 and backward (its products decompose) when
  dG > 0; nothing runs uphill, and a reaction whose driving force is nearly used up
  (an intermediate took it) is slow: the kinetic trap;
* m = (d_ref / d)^2: contact area per volume from milling (Jander-type diffusion), with
  the particle size d, um, set by the milling time (one size, the median; or a log-normal
  spread of sizes fired as classes, :mod:`.size_classes`);
* F_r: the limiting amount (mol of reaction) of the solid reactants (forward) or solid
  products (backward). Gases are the furnace atmosphere's: a reservoir at fixed partial
  pressure that never limits a reaction.

That is the first-order law. A reaction with ``law: jander`` grows a product layer
between two solids instead: its conversion alpha = made / (made + F) follows Jander's
[1 - (1 - alpha)^(1/3)]^2 = int k D m dt, its rate held at the first crystallites' layer
(FIRST_LAYER) below it (the kernel, :mod:`.rate_kernels`, says why); ``KineticState.layer``
carries what each such reaction has made, so a firing continued in parts grows the same layer.
A reaction with ``law: avrami-erofeev`` nucleates and grows its product inside one solid:
-ln(1 - alpha) = (int k D m dt)^2, sigmoidal, with an induction period from alpha = 0; the
same ``layer`` carries what it has made. A Jander-law reaction with a ``flux`` (Li2CO3) runs
first order above that reactant's melting point: the melt wets the other grains, no layer
limits the rate, and the rate constant is the one that half-converts in the Jander law's own
time (MOLTEN_FIRST_ORDER), so the half time is continuous at the melt.

Integration is exact for each reaction over a step (first order: the exponential update
F (1 - exp(-k D m dt)); Jander, Avrami-Erofeev: their integral laws), reactions applied in sequence (a step
in which a Jander reaction is fast is cut into parts), so amounts never go negative
and every element is conserved up to the gas exchanged with the atmosphere and the
volatile loss, both tallied. Grain size grows as d_g^2 = d_0^2 + int K_g(T) dt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .catalogue import ChemicalSystem, load_atmospheres
from .discretisation import COOL_STEPS, DWELL_STEPS, RAMP_STEPS
from .powder_bed import escape_table
from .rate_kernels import T_GRID_MAX, T_GRID_MIN, T_GRID_STEP, first_layer_slope, programmes_kernel, traces_kernel
from .stoichiometry import molar_mass
from .system_model import RATE_LAWS
from .tables import EV_TO_J_PER_MOL, R_GAS

if TYPE_CHECKING:
    from .world_rates import WorldKinetics

DRIVING_FORCE_SCALE = 0.05  # eV/atom: g_ref, the driving force at which D = tanh(1)
TRACE_PRESSURE = 1.0e-6  # atm, partial pressure of a gas the atmosphere does not name
REFERENCE_PARTICLE_SIZE = 2.0  # um: particle size at which m = 1
UNMILLED_PARTICLE_SIZE = 10.0  # um
MILLED_PARTICLE_SIZE = 0.5  # um, the finest a ball mill reaches
MILLING_TIME_CONSTANT = 2.0  # h
INITIAL_GRAIN_SIZE = 0.05  # um, crystallites as they first form
#: conversion at which a Jander-law product layer starts: the first crystallites
#: (INITIAL_GRAIN_SIZE thick) on a reactant particle of the reference size
FIRST_LAYER = 1.0 - (1.0 - 2.0 * INITIAL_GRAIN_SIZE / REFERENCE_PARTICLE_SIZE) ** 3


def _jander_half_time() -> float:
    """Reduced time at which the kernels' Jander law (its rate held at the first layer's
    below FIRST_LAYER) reaches alpha = 1/2: about 0.0454, against 0.0426 without the bound."""
    def g(a: float) -> float:
        return (1.0 - (1.0 - a) ** (1.0 / 3.0)) ** 2

    c0 = 1.0 - (1.0 - FIRST_LAYER) ** (1.0 / 3.0)
    return FIRST_LAYER / (1.5 * (1.0 - c0) ** 2 / c0) + g(0.5) - g(FIRST_LAYER)


#: a Jander-law reaction whose flux has melted runs first order at k times this: the rate
#: that half-converts in the Jander law's own time, so the half time is continuous at the melt
MOLTEN_FIRST_ORDER = math.log(2.0) / _jander_half_time()


def particle_size(milling_time: np.ndarray) -> np.ndarray:
    """Median precursor particle size d50 (by mass), um, after ``milling_time`` hours of ball
    milling: the one size of a default firing, the median of a size distribution's
    (:mod:`.size_classes`)."""
    t = np.asarray(milling_time, dtype=float)
    return MILLED_PARTICLE_SIZE + (UNMILLED_PARTICLE_SIZE - MILLED_PARTICLE_SIZE) * np.exp(
        -t / MILLING_TIME_CONSTANT
    )


def milling_rate_factor(milling_time: np.ndarray) -> np.ndarray:
    """Rate multiplier m = (d_ref / d)^2 from milling (dimensionless)."""
    return (REFERENCE_PARTICLE_SIZE / particle_size(milling_time)) ** 2


@dataclass
class KineticState:
    """Result of integrating a batch through its temperature histories.

    Attributes:
        amounts: (B, P) mol of each solid phase (``network.solids`` order).
        gas_released: (B, G) mol of each gas released to the atmosphere (negative: taken up).
        volatilized: (B, P) mol of each solid lost by evaporation.
        grain_size: (B,) um, mean grain size of the product.
        layer: (B, R) mol of reaction each Jander- or Avrami-law reaction has made so far
            (its product layer, its grown nuclei; 0 for first-order reactions); None before any firing.
    """

    amounts: np.ndarray
    gas_released: np.ndarray
    volatilized: np.ndarray
    grain_size: np.ndarray
    layer: np.ndarray | None = None


class ReactionNetwork:
    """A chemical system's reaction network, compiled to lookup tables for fast firing.

    Rate constants times driving forces are tabulated on a 1 K grid from 250 K to
    2500 K for every atmosphere, so a step costs a table lookup per reaction.
    """

    def __init__(self, system: ChemicalSystem):
        self.system = system
        self.solids: tuple[str, ...] = system.solids
        self.gases: tuple[str, ...] = system.gases
        self.atmospheres: tuple[str, ...] = tuple(load_atmospheres())
        s_index = {n: i for i, n in enumerate(self.solids)}
        g_index = {n: i for i, n in enumerate(self.gases)}
        self.molar_mass = np.array([molar_mass(system.phases[n].formula) for n in self.solids])
        self.elements: tuple[str, ...] = system.elements
        self.solid_elements = np.array(
            [[system.phases[n].element_amounts.get(e, 0.0) for e in self.elements] for n in self.solids]
        ).reshape(len(self.solids), len(self.elements))
        self.gas_elements = np.array(
            [[system.phases[n].element_amounts.get(e, 0.0) for e in self.elements] for n in self.gases]
        ).reshape(len(self.gases), len(self.elements))

        #: (T,) K, the rate tables' temperature grid (a row of the tables per atmosphere and temperature)
        self.grid = grid = np.arange(T_GRID_MIN, T_GRID_MAX + T_GRID_STEP / 2, T_GRID_STEP)
        self.n_grid = grid.size
        atm_p = load_atmospheres()
        self.reactants: list[list[tuple[int, float]]] = []
        self.products: list[list[tuple[int, float]]] = []
        self.gas_terms: list[list[tuple[int, float]]] = []
        rate = np.empty((len(system.reactions), len(self.atmospheres) * self.n_grid))
        for r, spec in enumerate(system.reactions):
            rxn = spec.reaction
            self.reactants.append([(s_index[n], -c) for n, c in rxn.coefficients.items()
                                   if c < 0 and n in s_index])
            self.products.append([(s_index[n], c) for n, c in rxn.coefficients.items()
                                  if c > 0 and n in s_index])
            self.gas_terms.append([(g_index[n], c) for n, c in rxn.coefficients.items() if n in g_index])
            atoms = sum(-c * rxn.phases[n].atoms for n, c in rxn.coefficients.items() if c < 0)
            k = spec.prefactor * np.exp(-spec.activation_energy / (R_GAS * grid))
            for a, atm in enumerate(self.atmospheres):
                pressures = {g: atm_p[atm].get(g, TRACE_PRESSURE) for g in self.gases}
                dg = rxn.gibbs(grid, pressures) / EV_TO_J_PER_MOL / atoms  # eV/atom
                rate[r, a * self.n_grid:(a + 1) * self.n_grid] = k * np.tanh(-dg / DRIVING_FORCE_SCALE)
        # (atmosphere x temperature, reaction): one step reads one row, a single cache line
        self.rate_table = np.ascontiguousarray(rate.T)
        self.laws = np.array([RATE_LAWS.index(spec.law) for spec in system.reactions], dtype=np.int64)
        #: (R,) K above which a Jander-law reaction runs first order through its flux's melt (inf: never)
        self.flux_melting = np.array([spec.flux_melting_K for spec in system.reactions], dtype=float)
        self._structure = _pad(self.reactants) + _pad(self.products) + (
            _gas_matrix(self.gas_terms, len(self.gases)), self.laws, FIRST_LAYER, first_layer_slope(FIRST_LAYER),
            MOLTEN_FIRST_ORDER, self.flux_melting,
        )
        #: (J,) the Jander-law reactions, the only ones whose steps the kernels may cut into parts (unsigned: see _pad)
        self.jander_index = np.flatnonzero(self.laws == RATE_LAWS.index("jander")).astype(np.uint64)
        self._fastest: tuple[np.ndarray, np.ndarray] | None = None  # (rate table, its fastest_jander_rates)
        self._escape: np.ndarray | None = None  # the powder bed's escape table, built when a bed is first fired
        self.volatile_index = np.array([s_index[n] for n in system.volatiles], dtype=np.uint64)
        self.volatile_table = np.array(
            [A * np.exp(-Ea / (R_GAS * grid)) for Ea, A in system.volatiles.values()]
        ).reshape(len(self.volatile_index), self.n_grid)
        Eg, Ag = system.grain_growth
        self.grain_table = Ag * np.exp(-Eg / (R_GAS * grid))
        self._no_worlds = (np.zeros((0, len(system.reactions), 2)), np.zeros((0, len(self.volatile_index), 2)),
                           np.zeros((0, 2)))

    def integrate(
        self,
        amounts: np.ndarray,
        temperatures: np.ndarray,
        dt: np.ndarray,
        atmosphere: np.ndarray,
        rate_factor: np.ndarray,
        grain_size: np.ndarray | None = None,
        worlds: WorldKinetics | None = None,
        layer: np.ndarray | None = None,
        bed: np.ndarray | None = None,
        first_step: int = 0,
    ) -> KineticState:
        """Fire a batch of samples through their temperature histories.

        Args:
            amounts: (B, P) initial mol of each solid.
            temperatures: (B, S) sample temperature at each step, K (the *true* one).
            dt: (B, S) step durations, s.
            atmosphere: (B,) int, atmosphere index.
            rate_factor: (B,) dimensionless multiplier of every rate (milling).
            grain_size: (B,) um, grain size to start from (to continue an earlier
                integration); default: fresh crystallites.
            worlds: each sample's own Arrhenius parameters (B rows: a batch of campaigns,
                each in a drawn world of this network's system); default the network's.
            layer: (B, R) the product layers to start from (``KineticState.layer`` of an
                earlier integration); default: none yet.
            bed: (B,) cm/mol, each sample's :meth:`.powder_bed.PowderBed.factor`: its gas
                must cross a powder bed; default: the furnace's atmosphere reaches every grain.
            first_step: how many steps the firing has taken before these (the kernels
                alternate the reactions' order step by step; a continued firing keeps the beat).

        Returns:
            the final :class:`KineticState`.
        """
        n = np.array(amounts, dtype=float, order="C")  # copy: the caller's array stays
        B = n.shape[0]
        gas = np.zeros((B, len(self.gases)))
        lost = np.zeros_like(n)
        grain2 = (np.full(B, INITIAL_GRAIN_SIZE**2) if grain_size is None
                  else np.asarray(grain_size, dtype=float) ** 2)
        made = self._layers(B, layer)
        traces_kernel(
            n, np.ascontiguousarray(temperatures, dtype=float), np.ascontiguousarray(dt, dtype=float),
            np.asarray(atmosphere, dtype=np.int64) * self.n_grid, np.ascontiguousarray(rate_factor, dtype=float),
            self._tables(worlds, B) + self._bed(bed, B), gas, lost, grain2, made, int(first_step) % 2,
        )
        return KineticState(n, gas, lost, np.sqrt(grain2), made)

    def integrate_programmes(
        self,
        amounts: np.ndarray,
        dwell_temperature: np.ndarray,
        ramp_rate: np.ndarray,
        dwell_time: np.ndarray,
        cooling_rate: np.ndarray,
        atmosphere: np.ndarray,
        rate_factor: np.ndarray,
        worlds: WorldKinetics | None = None,
        bed: np.ndarray | None = None,
    ) -> KineticState:
        """Fire a batch through ideal programmes (ramp from room temperature, dwell, cool).

        The fast path of planners and the oracle: the steps are generated inside the
        kernel, identical to :func:`programme_steps`, so no (B, S) arrays are built.

        Args:
            amounts: (B, P) initial mol of each solid.
            dwell_temperature: (B,) K; ramp_rate: (B,) K/min; dwell_time: (B,) h;
                cooling_rate: (B,) K/min.
            atmosphere: (B,) int atmosphere index; rate_factor: (B,) milling multiplier.
            worlds: each sample's own Arrhenius parameters, as :meth:`integrate`'s.
            bed: (B,) cm/mol, each sample's powder bed, as :meth:`integrate`'s.
        """
        n = np.array(amounts, dtype=float, order="C")
        B = n.shape[0]
        gas = np.zeros((B, len(self.gases)))
        lost = np.zeros_like(n)
        grain2 = np.full(B, INITIAL_GRAIN_SIZE**2)
        made = self._layers(B, None)

        def col(x):
            return np.ascontiguousarray(x, dtype=float)

        programmes_kernel(
            n, col(dwell_temperature), col(ramp_rate), col(dwell_time), col(cooling_rate),
            np.asarray(atmosphere, dtype=np.int64) * self.n_grid, col(rate_factor),
            self._tables(worlds, B) + self._bed(bed, B), gas, lost, grain2, made, (RAMP_STEPS, DWELL_STEPS, COOL_STEPS),
        )
        return KineticState(n, gas, lost, np.sqrt(grain2), made)

    def _bed(self, bed: np.ndarray | None, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """The kernels' (escape table, per-sample bed factor); empty arrays: no bed."""
        if bed is None:
            return _NO_BED
        factor = np.ascontiguousarray(bed, dtype=float)
        if factor.shape != (batch,) or not np.all(np.isfinite(factor)) or np.any(factor <= 0):
            raise ValueError(f"bed factors must be {batch} finite numbers > 0 (cm/mol), got shape {factor.shape}")
        if self._escape is None:
            self._escape = escape_table(self.system.reactions, self.gases, load_atmospheres(), self.atmospheres,
                                        self.grid, TRACE_PRESSURE)
        return self._escape, factor

    def _layers(self, batch: int, layer: np.ndarray | None) -> np.ndarray:
        """(B, R) product layers for the kernels to advance: a copy of ``layer``, or zeros."""
        shape = (batch, len(self.system.reactions))
        if layer is None:
            return np.zeros(shape)
        out = np.array(layer, dtype=float, order="C")
        if out.shape != shape:
            raise ValueError(f"layer must have shape {shape}, got {out.shape}")
        return out

    def _tables(self, worlds: WorldKinetics | None, batch: int) -> tuple:
        """The kernels' tables for ``batch`` samples; ``worlds``: each one's own Arrhenius parameters."""
        if worlds is None:
            w = self._no_worlds
        elif len(worlds) != batch:
            raise ValueError(f"world kinetics for {len(worlds)} samples, amounts for {batch}")
        else:
            w = worlds.arrays(len(self.system.reactions), self.volatile_index.shape[0])
        if self._fastest is None or self._fastest[0] is not self.rate_table:  # a world's tables scaled since
            self._fastest = (self.rate_table, self.fastest_jander_rates())
        return (self.rate_table, *self._structure, self.jander_index, self._fastest[1], self.volatile_index,
                self.volatile_table, self.grain_table, *w)

    def fastest_jander_rates(self) -> np.ndarray:
        """(A x T,) 1/s: at each row of the rate table, the fastest forward rate k D of a
        Jander-law reaction still solid at that row's temperatures (T +- half a grid step;
        0 if none). A step of ``dt`` s at milling factor m with this times ``dt m``
        JANDER_MAX_SLOPE below MAX_STEP_CONVERSION cannot convert more than that of any
        reactant, so the kernels need not look at it reaction by reaction
        (:func:`.rate_kernels._substeps`)."""
        row_T = np.tile(self.grid, len(self.atmospheres))
        solid = row_T[:, None] - T_GRID_STEP / 2 < self.flux_melting[None, self.jander_index]
        forward = np.maximum(self.rate_table[:, self.jander_index], 0.0)
        return np.max(np.where(solid, forward, 0.0), axis=1, initial=0.0)

    def element_totals(self, state_amounts: np.ndarray, gas: np.ndarray, lost: np.ndarray) -> np.ndarray:
        """(B, E) mol of each element in sample + released gas + volatilized solid."""
        return state_amounts @ self.solid_elements + gas @ self.gas_elements + lost @ self.solid_elements


_NO_BED = (np.zeros((0, 0)), np.zeros(0))  # the kernels' bed arrays when gas reaches every grain


def _pad(terms: list[list[tuple[int, float]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ragged (phase index, coefficient) lists as padded arrays (index, coeff, count).

    Indices the kernels read are unsigned: numba then indexes without the check for a
    negative (wrap-around) index (part of a 9 % faster LiMn2O4 batch, the same samples to
    the bit; the README's batched-firing row)."""
    width = max([len(t) for t in terms] + [1])
    idx = np.zeros((len(terms), width), dtype=np.uint64)
    coef = np.ones((len(terms), width))
    count = np.array([len(t) for t in terms], dtype=np.int64)
    for r, t in enumerate(terms):
        for j, (i, c) in enumerate(t):
            idx[r, j], coef[r, j] = i, c
    return idx, coef, count


def _gas_matrix(terms: list[list[tuple[int, float]]], n_gases: int) -> np.ndarray:
    out = np.zeros((len(terms), n_gases))
    for r, t in enumerate(terms):
        for g, c in t:
            out[r, g] = c
    return out
