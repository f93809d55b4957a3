"""Hidden worlds: the truth of one lab, drawn around the catalogue's nominal model.

A lab instance does not have the catalogue's chemistry: it has its own, drawn (seeded) from
the prior in ``envs/chemistry/data/world_prior.yaml`` (every scale there with its source):
each reaction's activation energy and prefactor (the kinetic trap's strength with them),
grain growth and evaporation, and the lab's own instrument scales (how far its furnaces are
off, how they drift, how pure its precursors are and how much water they take up).
``spread`` multiplies every scale; 0 gives the nominal world itself.

What agents, rewards and planners may use is the **belief**: the nominal model (the lab
front-end's ``system``). The drawn world (:class:`World`) is the simulator's: the backends
fire on it, the oracle is computed per world, and evaluation reads it under
``info["privileged"]``.

Units: J/mol, 1/s, K, fractions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from synthgap.envs.chemistry import ChemicalSystem
from synthgap.envs.chemistry.firing import register_world

from .params import LabParams

__all__ = ["DEFAULT_WORLD_SPREAD", "World", "WorldDraw", "WorldPrior", "draw_parameters", "draw_world", "world_lab",
           "world_prior", "world_system"]

PRIOR_FILE = Path(__file__).resolve().parents[1] / "chemistry" / "data" / "world_prior.yaml"
#: the envs' default spread: every lab a world of its own
DEFAULT_WORLD_SPREAD = 1.0


@dataclass(frozen=True)
class WorldPrior:
    """The scales of the world prior at spread 1 (see ``world_prior.yaml`` for each source).

    Attributes:
        ea_rel_sd: relative sd of reaction activation energies.
        ln_a_sd: sd of ln(prefactor) of reactions.
        grain_ea_rel_sd, grain_ln_a_sd: the same for grain growth.
        volatile_ea_rel_sd, volatile_ln_a_sd: the same for evaporation.
        offset_sd_ln: sd of ln(the lab's furnace-offset scale).
        drift_ln_sd: sd of ln(the drift and offset-walk scales).
        impurity_ln_sd: sd of ln(impurity level and hygroscopicity scales).
    """

    ea_rel_sd: float
    ln_a_sd: float
    grain_ea_rel_sd: float
    grain_ln_a_sd: float
    volatile_ea_rel_sd: float
    volatile_ln_a_sd: float
    offset_sd_ln: float
    drift_ln_sd: float
    impurity_ln_sd: float


@lru_cache(maxsize=1)
def world_prior() -> WorldPrior:
    """The prior of ``world_prior.yaml``."""
    from synthgap.envs.userfiles import load_user_file

    d = load_user_file(PRIOR_FILE)

    def v(section: str, key: str) -> float:
        return float(d[section][key]["value"])

    return WorldPrior(v("reactions", "activation_energy_rel_sd"), v("reactions", "ln_prefactor_sd"),
                      v("grain_growth", "activation_energy_rel_sd"), v("grain_growth", "ln_prefactor_sd"),
                      v("volatiles", "activation_energy_rel_sd"), v("volatiles", "ln_prefactor_sd"),
                      v("furnace", "offset_sd_ln"), v("furnace", "drift_ln_sd"), v("impurities", "impurity_ln_sd"))


@dataclass(frozen=True, eq=False)
class World:
    """One lab's hidden truth.

    Attributes:
        system: the chemistry this lab really has (the nominal system when ``spread`` is 0).
        nominal: the catalogue's system (the belief).
        lab: the lab's parameters with its own instrument scales.
        spread: the prior's multiplier it was drawn with.
        seed: the seed it was drawn from.
        draws: what was drawn (per reaction, in the system's order: Ea J/mol and A 1/s as
            (nominal, world); the instrument scales), for reports. PRIVILEGED.
    """

    system: ChemicalSystem
    nominal: ChemicalSystem
    lab: LabParams
    spread: float
    seed: int
    draws: dict[str, Any] = field(default_factory=dict)


def _arrhenius(z: tuple[float, float], Ea: float, A: float, ea_sd: float, ln_a_sd: float,
               spread: float) -> tuple[float, float]:
    """(Ea, A) perturbed by the standard normals ``z``: Ea relatively (floored at half), A log-normally."""
    return Ea * max(1.0 + spread * ea_sd * z[0], 0.5), A * math.exp(spread * ln_a_sd * z[1])


@dataclass(frozen=True)
class WorldDraw:
    """What one world draws around its nominal system (cheap: no rate tables built).

    Attributes:
        reactions: per reaction, in the system's order, (Ea J/mol, A 1/s) of the world.
        grain: (Ea J/mol, A) of grain growth.
        volatiles: volatile solid -> (Ea J/mol, A 1/s) of its evaporation.
        scales: the lab's instrument scales (offset_sd, drift, walk, impurity, water), multipliers.
    """

    reactions: tuple[tuple[float, float], ...]
    grain: tuple[float, float]
    volatiles: dict[str, tuple[float, float]]
    scales: dict[str, float]


def draw_parameters(nominal: ChemicalSystem, seed: int, spread: float = DEFAULT_WORLD_SPREAD,
                    prior: WorldPrior | None = None) -> WorldDraw:
    """The parameters of the world ``seed`` around ``nominal`` (:func:`draw_world` builds it from them).

    Raises:
        ValueError: ``spread`` is not a finite number >= 0.
    """
    if not (isinstance(spread, int | float) and math.isfinite(spread) and spread >= 0):
        raise ValueError(f"world spread must be a finite number >= 0, got {spread!r}")
    if spread == 0:
        return WorldDraw(tuple((r.activation_energy, r.prefactor) for r in nominal.reactions), nominal.grain_growth,
                         dict(nominal.volatiles), dict.fromkeys(("offset_sd", "drift", "walk", "impurity", "water"),
                                                                1.0))
    p = prior if prior is not None else world_prior()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))  # its own stream
    # one call for every normal, in the order of the draws: two per reaction (Ea, A), two for
    # grain growth, two per volatile, then the five instrument scales
    n_r, n_v = len(nominal.reactions), len(nominal.volatiles)
    z = rng.standard_normal(2 * (n_r + 1 + n_v) + 5).tolist()
    pairs = iter(zip(z[0:-5:2], z[1:-5:2], strict=True))
    reactions = tuple(_arrhenius(next(pairs), r.activation_energy, r.prefactor, p.ea_rel_sd, p.ln_a_sd, spread)
                      for r in nominal.reactions)
    grain = _arrhenius(next(pairs), *nominal.grain_growth, p.grain_ea_rel_sd, p.grain_ln_a_sd, spread)
    volatiles = {n: _arrhenius(next(pairs), Ea, A, p.volatile_ea_rel_sd, p.volatile_ln_a_sd, spread)
                 for n, (Ea, A) in nominal.volatiles.items()}
    z = z[-5:]
    scales = {"offset_sd": math.exp(spread * p.offset_sd_ln * z[0]), "drift": math.exp(spread * p.drift_ln_sd * z[1]),
              "walk": math.exp(spread * p.drift_ln_sd * z[2]), "impurity": math.exp(spread * p.impurity_ln_sd * z[3]),
              "water": math.exp(spread * p.impurity_ln_sd * z[4])}
    return WorldDraw(reactions, grain, volatiles, scales)


def world_lab(lab: LabParams, scales: dict[str, float]) -> LabParams:
    """``lab`` with a world's instrument ``scales`` (:attr:`WorldDraw.scales`)."""
    return replace(
        lab, offset_sd_K=lab.offset_sd_K * scales["offset_sd"],
        offset_walk_K_per_sqrt_day=lab.offset_walk_K_per_sqrt_day * scales["walk"],
        furnace=replace(lab.furnace, drift_sigma_K=lab.furnace.drift_sigma_K * scales["drift"]),
        purity_min=max(1.0 - (1.0 - lab.purity_min) * scales["impurity"], 0.5),
        hygroscopicity=lab.hygroscopicity * scales["water"])


def world_system(nominal: ChemicalSystem, draw: WorldDraw) -> ChemicalSystem:
    """The chemistry of a world: ``nominal`` with the Arrhenius parameters of ``draw``, ready to fire."""
    reactions = tuple(replace(r, activation_energy=Ea, prefactor=A)  # the rate law stays the nominal's
                      for r, (Ea, A) in zip(nominal.reactions, draw.reactions, strict=True))
    system = nominal.with_rates(reactions, draw.grain, draw.volatiles)
    register_world(system, nominal)
    return system


def draw_world(nominal: ChemicalSystem, seed: int, spread: float = DEFAULT_WORLD_SPREAD,
               lab: LabParams | None = None, prior: WorldPrior | None = None) -> World:
    """Draw one lab's truth around ``nominal`` (and the lab parameters ``lab``), seeded.

    Raises:
        ValueError: ``spread`` is not a finite number >= 0.
    """
    d = draw_parameters(nominal, seed, spread, prior)
    lab = lab if lab is not None else LabParams()
    if spread == 0:
        return World(nominal, nominal, lab, 0.0, int(seed))
    system = world_system(nominal, d)
    draws: dict[str, Any] = {
        "reactions": [{"Ea_J_per_mol": (r.activation_energy, Ea), "A_per_s": (r.prefactor, A)}
                      for r, (Ea, A) in zip(nominal.reactions, d.reactions, strict=True)],
        "lab_scales": dict(d.scales)}
    return World(system, nominal, world_lab(lab, d.scales), float(spread), int(seed), draws)
