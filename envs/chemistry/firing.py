"""Firing recipes: temperature programmes, starting mixtures, and the fired sample.

:func:`fire` is the one entry point: recipes in, samples out (phase fractions, grain
size, measured property), batched. The lab twin passes its own true temperature traces
(drift, overshoot) and weighed amounts; planners and the oracle pass thousands of recipes.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from .catalogue import ChemicalSystem, load_system
from .discretisation import COOL_STEPS, DWELL_STEPS, RAMP_STEPS
from .kinetics import KineticState, ReactionNetwork, milling_rate_factor
from .phenotype import performance
from .powder_bed import PowderBed
from .recipe import ROOM_TEMPERATURE, Recipe, RecipeBatch
from .size_classes import ParticleSizeDistribution
from .stoichiometry import precursor_amounts
from .system_model import per_structure

if TYPE_CHECKING:
    from .world_rates import WorldKinetics

#: networks of worlds derived from a compiled one (:func:`register_world`), freed with the world
_WORLD_NETWORKS: weakref.WeakKeyDictionary[ChemicalSystem, ReactionNetwork] = weakref.WeakKeyDictionary()


def network_for(system: ChemicalSystem) -> ReactionNetwork:
    """The compiled network of a system (compiled once per process; a drawn world's is its
    nominal system's with its own rate constants, :func:`register_world`)."""
    net = _WORLD_NETWORKS.get(system)
    return net if net is not None else _compiled_network(system)


@lru_cache(maxsize=32)
def _compiled_network(system: ChemicalSystem) -> ReactionNetwork:
    return ReactionNetwork(system)


def register_world(world: ChemicalSystem, nominal: ChemicalSystem) -> None:
    """Make ``world`` (``nominal`` with other Arrhenius parameters) fire on ``nominal``'s
    compiled network with its own rate constants (:class:`~.world_kinetics.WorldNetwork`):
    microseconds instead of a compilation."""
    from .world_kinetics import WorldNetwork

    _WORLD_NETWORKS[world] = WorldNetwork(network_for(nominal), world)


@per_structure(maxsize=32)
def _target_columns(system: ChemicalSystem) -> np.ndarray:
    """Column of each target (``system.targets`` order) among the network's solids."""
    solids = network_for(system).solids
    return np.array([solids.index(t) for t in system.targets])


@dataclass(frozen=True)
class TemperatureTrace:
    """Sample temperature histories of a batch.

    Attributes:
        temperature: (B, S) K, the temperature during each step.
        dt: (B, S) s, each step's duration.
    """

    temperature: np.ndarray
    dt: np.ndarray

    @property
    def time(self) -> np.ndarray:
        """(B, S) s, the time at the end of each step."""
        return np.cumsum(self.dt, axis=1)


def programme_trace(batch: RecipeBatch) -> TemperatureTrace:
    """The programmed (ideal) temperature history of each recipe: ramp, dwell, cool.

    Steps sit at segment midpoints; ramps and cooling run between room temperature and
    the dwell temperature at the recipe's rates.
    """
    Td = batch.dwell_temperature[:, None]
    span = Td - ROOM_TEMPERATURE
    u_r = (np.arange(RAMP_STEPS) + 0.5) / RAMP_STEPS
    u_c = (np.arange(COOL_STEPS) + 0.5) / COOL_STEPS
    ramp_T = ROOM_TEMPERATURE + span * u_r[None, :]
    cool_T = Td - span * u_c[None, :]
    dwell_T = np.repeat(Td, DWELL_STEPS, axis=1)
    ramp_dt = np.repeat(span * 60.0 / batch.ramp_rate[:, None] / RAMP_STEPS, RAMP_STEPS, axis=1)
    dwell_dt = np.repeat(batch.dwell_time[:, None] * 3600.0 / DWELL_STEPS, DWELL_STEPS, axis=1)
    cool_dt = np.repeat(span * 60.0 / batch.cooling_rate[:, None] / COOL_STEPS, COOL_STEPS, axis=1)
    return TemperatureTrace(
        np.concatenate([ramp_T, dwell_T, cool_T], axis=1),
        np.concatenate([ramp_dt, dwell_dt, cool_dt], axis=1),
    )


def starting_amounts(system: ChemicalSystem, batch: RecipeBatch) -> np.ndarray:
    """(B, P) mol of each solid weighed in for each recipe (1 mol target basis), with excess."""
    table, first, offset = _route_amounts(system)
    route = offset[batch.target] + batch.precursor_set
    out = table[route]
    out[np.arange(len(batch)), first[route]] *= 1.0 + batch.excess
    return out


@per_structure(maxsize=32)
def _route_amounts(system: ChemicalSystem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per route (target, precursor set), in ``system.targets`` order: (R, P) exact mol of
    each solid, (R,) column of the first precursor (the one an excess applies to), and
    (T,) the first route of each target."""
    solids = network_for(system).solids
    rows, first, offset = [], [], []
    for name, spec in system.targets.items():
        offset.append(len(rows))
        for pre in spec.precursor_sets:
            rows.append(precursor_amounts(system, name, tuple(pre)))
            first.append(solids.index(pre[0]))
    return np.array(rows), np.array(first, dtype=np.int64), np.array(offset, dtype=np.int64)


@dataclass
class FiredSamples:
    """What came out of the furnace for a batch.

    Attributes:
        phases: names of the solid phases (columns of the arrays).
        amounts: (B, P) mol per mol of target intended.
        phase_fractions: (B, P) weight fractions of the solid phases.
        target_fraction: (B,) weight fraction of each recipe's target.
        grain_size: (B,) um.
        density: (B,) relative density from the system's sintering curve, 0 to 1 (NaN for a
            system without a sintering block).
        performance: (B,) the target's measured property (noise-free truth).
        kinetic: the full kinetic state (gas exchanged, volatile loss).
        initial: (B, P) mol weighed in.
    """

    phases: tuple[str, ...]
    amounts: np.ndarray
    phase_fractions: np.ndarray
    target_fraction: np.ndarray
    grain_size: np.ndarray
    density: np.ndarray
    performance: np.ndarray
    kinetic: KineticState
    initial: np.ndarray


def fire(
    system: ChemicalSystem | str,
    recipes: RecipeBatch | list[Recipe] | Recipe,
    trace: TemperatureTrace | None = None,
    initial: np.ndarray | None = None,
    worlds: WorldKinetics | None = None,
    sizes: ParticleSizeDistribution | None = None,
    bed: PowderBed | None = None,
) -> FiredSamples:
    """Fire recipes and return the samples.

    Args:
        system: a ChemicalSystem or a catalogue name.
        recipes: a batch, a list of recipes or one recipe.
        trace: the sample temperature histories; default: the programmed profiles.
        initial: (B, P) mol actually weighed in (impurities included); default: the
            recipes' exact amounts.
        worlds: each recipe's own Arrhenius parameters relative to ``system``'s (a batch of
            campaigns, each in its own drawn world); default ``system``'s.
        sizes: the milled powder's particle-size distribution, fired as size classes
            (:mod:`.size_classes`; costs ``sizes.classes`` firings a recipe); default one
            size, the milling time's median.
        bed: the crucible's powder bed, whose gas must diffuse out (:mod:`.powder_bed`);
            default: the furnace's atmosphere reaches every grain.
    """
    if isinstance(system, str):
        system = load_system(system)
    if isinstance(recipes, Recipe):
        recipes = [recipes]
    batch = recipes if isinstance(recipes, RecipeBatch) else RecipeBatch.from_recipes(system, recipes)
    net = network_for(system)
    start = starting_amounts(system, batch) if initial is None else np.asarray(initial, dtype=float)
    if start.shape != (len(batch), len(net.solids)):
        raise ValueError(f"initial amounts must have shape {(len(batch), len(net.solids))}, got {start.shape}")
    beds = None if bed is None else bed.factor(start @ net.molar_mass)
    if sizes is None or sizes.single_size:
        state = _integrate(net, batch, start, trace, worlds, milling_rate_factor(batch.milling_time), beds)
    else:  # every recipe fired once per size class, then the classes averaged by mass
        rows = sizes.rows(len(batch))
        classes = None if trace is None else TemperatureTrace(trace.temperature[rows], trace.dt[rows])
        state = sizes.combine(_integrate(net, batch.take(rows), start[rows], classes,
                                         None if worlds is None else worlds.take(rows),
                                         sizes.rate_factors(batch.milling_time).ravel(),
                                         None if beds is None else beds[rows]))
    if system.sintering is None:
        work = None
    elif trace is None:
        work = system.sintering.work_of_programmes(batch.dwell_temperature, batch.ramp_rate, batch.dwell_time,
                                                   batch.cooling_rate, ROOM_TEMPERATURE)
    else:
        work = system.sintering.work_of_trace(trace.temperature, trace.dt)
    return samples_from_state(system, batch, state, start, work)


def _integrate(net: ReactionNetwork, batch: RecipeBatch, start: np.ndarray, trace: TemperatureTrace | None,
               worlds: WorldKinetics | None, factor: np.ndarray, bed: np.ndarray | None) -> KineticState:
    """``batch`` fired from ``start`` through ``trace`` (None: the programmed profiles, their
    steps generated inside the kernel) at the milling rate factors ``factor`` (B,), through
    powder beds ``bed`` (B,) cm/mol (None: none)."""
    if trace is None:
        return net.integrate_programmes(start, batch.dwell_temperature, batch.ramp_rate, batch.dwell_time,
                                        batch.cooling_rate, batch.atmosphere, factor, worlds=worlds, bed=bed)
    return net.integrate(start, trace.temperature, trace.dt, batch.atmosphere, factor, worlds=worlds, bed=bed)


def samples_from_state(system: ChemicalSystem, batch: RecipeBatch, state: KineticState,
                       initial: np.ndarray, sintering_work: np.ndarray | None = None) -> FiredSamples:
    """The fired samples of ``batch`` from the kinetics' final ``state``: weight fractions,
    target fraction, grain size, density, the target's property (``initial``: (B, P) mol
    weighed in; ``sintering_work``: (B,) s/K, the master sintering curve's Theta of each
    sample's history, :mod:`.sintering`; None: not fired, green density)."""
    net = network_for(system)
    start = initial
    mass = state.amounts * net.molar_mass[None, :]
    total = mass.sum(axis=1, keepdims=True)
    fractions = np.divide(mass, total, out=np.zeros_like(mass), where=total > 0)
    target_cols = _target_columns(system)[batch.target]
    target_fraction = fractions[np.arange(len(batch)), target_cols]
    if system.sintering is None:
        density = np.full(len(batch), np.nan)
    else:
        density = system.sintering.density(np.zeros(len(batch)) if sintering_work is None else sintering_work)
    perf = performance(system, batch.target, fractions, target_fraction, state.grain_size,
                       None if system.sintering is None else density)
    return FiredSamples(net.solids, state.amounts, fractions, target_fraction, state.grain_size,
                        density, perf, state, start)


@dataclass(frozen=True)
class FiringHistory:
    """One recipe fired with snapshots after every step (for plots and teaching).

    Attributes:
        time: (S,) s, end of each step.
        temperature: (S,) K during each step.
        phases: solid phase names.
        phase_fractions: (S, P) weight fractions after each step.
        final: the fired sample.
        density: (S,) relative density after each step (NaN: the system has no sintering curve).
    """

    time: np.ndarray
    temperature: np.ndarray
    phases: tuple[str, ...]
    phase_fractions: np.ndarray
    final: FiredSamples
    density: np.ndarray


def fire_history(system: ChemicalSystem, recipe: Recipe, sizes: ParticleSizeDistribution | None = None,
                 bed: PowderBed | None = None) -> FiringHistory:
    """Fire one recipe and keep the phase fractions after every step of the programme
    (``sizes``, ``bed``: the powder's size classes and its bed, as :func:`fire`'s)."""
    batch = RecipeBatch.from_recipes(system, [recipe])
    trace = programme_trace(batch)
    S = trace.temperature.shape[1]
    # re-integrate every prefix in one batch: row k stops after step k (dt = 0 afterwards)
    mask = np.tril(np.ones((S, S)))
    prefixes = TemperatureTrace(np.repeat(trace.temperature, S, axis=0), trace.dt * mask)
    many = batch.take(np.zeros(S, dtype=np.int64))
    snap = fire(system, many, trace=prefixes, sizes=sizes, bed=bed)
    return FiringHistory(trace.time[0], trace.temperature[0], snap.phases, snap.phase_fractions,
                         fire(system, batch, trace=trace, sizes=sizes, bed=bed), snap.density)
