"""The powder bed's own atmosphere: gas a reaction releases (or takes up) must cross the bed.

A furnace's atmosphere sets the partial pressures far from the sample, but a carbonate
decomposing in a crucible fills its own pores with CO2: the gas leaves only as fast as it
diffuses out through the bed. Near a decomposition's crossover, where the equilibrium
pressure p_eq is barely above the furnace's p_atm, that escape, not the chemistry, sets the
rate, so deep beds and big samples decompose later and hotter (the sample-mass effect of
thermogravimetry; a "self-generated atmosphere").

The model is the limit in which the chemistry is fast and the gas slow. A bed of depth L,
porosity eps and bulk density rho_bulk, with gas made uniformly through it and leaving at
its top surface, carries out (quasi-steady diffusion in a slab, the mean excess pressure)

    J = 3 D_eff (p_eq - p_atm) / (L^2 R T)   mol of gas per s per cm^3 of bed,

with D_eff = D_g(T) eps / tau, the Bruggeman tortuosity tau = eps^-1/2 (Bruggeman, Ann.
Phys. 416, 636 (1935)), and D_g(T) = D_g(298 K) (T / 298 K)^1.75 (Fuller, Schettler and
Giddings, Ind. Eng. Chem. 58(5), 18 (1966)). Per mol of target (the kinetics' basis, a mix
of m_mix g), a reaction r exchanging nu_g mol of gas g per mol of reaction can then advance
at most

    d xi / dt <= bed x D_g(T) |p_eq,g - p_atm,g| / (R T |nu_g|),   bed = 3 eps^1.5 m_mix / (rho_bulk L^2)

(bed in cm/mol, :meth:`PowderBed.factor`; the rest is :func:`escape_table`, mol/(cm s)),
taking up gas at the same rate (p_eq below p_atm: an oxidation, a carbonation).
p_eq,g is the partial pressure of g at which the reaction's driving force vanishes, the
other gases at the furnace's. A reaction whose p_eq is at least 1 atm pushes its gas out by
flow and is not limited. Stated approximations: each reaction is limited on its own (two
reactions releasing CO2 in the same step do not share the bed's pressure), the bed's mass
and depth are the weighed-in mix's throughout, and the limit applies only where it binds
(it never speeds a reaction up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .tables import R_GAS

R_CM3_ATM = 82.05736  # cm^3 atm / (mol K)
ONE_ATM = 1.0  # atm: the furnace's total pressure, above which released gas leaves by flow
#: binary diffusion coefficients in N2 (air) at 298 K and 1 atm, cm^2/s: CRC Handbook of
#: Chemistry and Physics, "Diffusion coefficients in gases at 101.325 kPa" (from Marrero and
#: Mason, J. Phys. Chem. Ref. Data 1, 3 (1972)): CO2-N2 0.165, O2-N2 0.20 (0.202 at 293 K,
#: scaled), H2O-air 0.25; +-5 %
GAS_DIFFUSIVITY_298K = {"CO2": 0.165, "O2": 0.20, "H2O": 0.25}
FULLER_EXPONENT = 1.75  # D ~ T^1.75 at fixed pressure (Fuller et al. 1966)


@dataclass(frozen=True)
class PowderBed:
    """A loose powder bed in a crucible, open at the top.

    Attributes:
        depth_mm: bed depth L, mm (assumption 5 mm: 1-5 g of powder in a crucible, 2-10 mm).
        bulk_density_g_cm3: g/cm^3 of bed (assumption 1.5: loose oxide and carbonate powders, 1-2.5).
        porosity: pore fraction of the bed, 0-1 (assumption 0.5, +-0.1).
    """

    depth_mm: float = 5.0
    bulk_density_g_cm3: float = 1.5
    porosity: float = 0.5

    def __post_init__(self) -> None:
        for name, value, lo, hi in (("depth_mm", self.depth_mm, 0.0, 1000.0),
                                    ("bulk_density_g_cm3", self.bulk_density_g_cm3, 0.0, 30.0),
                                    ("porosity", self.porosity, 0.0, 1.0)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not lo < value <= hi:
                raise ValueError(f"powder bed {name} must be a number in ({lo:g}, {hi:g}], got {value!r}")

    def factor(self, mix_mass_g_per_mol: np.ndarray) -> np.ndarray:
        """(B,) cm/mol: 3 eps^1.5 m_mix / (rho_bulk L^2) for mixes of ``mix_mass_g_per_mol`` (B,)
        g per mol of target (the weighed-in precursors)."""
        L = self.depth_mm / 10.0  # cm
        mix = np.asarray(mix_mass_g_per_mol, dtype=float)
        return 3.0 * self.porosity**1.5 * mix / (self.bulk_density_g_cm3 * L * L)


def escape_table(reactions, gases: tuple[str, ...], atmospheres: dict[str, dict[str, float]],
                 atmosphere_names: tuple[str, ...], grid: np.ndarray, trace_pressure: float) -> np.ndarray:
    """(A x T, R) mol of reaction per cm per s: each reaction's escape limit on the kernels'
    (atmosphere, temperature) rows, to be multiplied by a bed's :meth:`PowderBed.factor`;
    inf where no gas limits it (no gas, or its gases would fill the pores at 1 atm).

    A reaction running at J (mol of reaction per s per unit bed factor) holds each of its
    gases g at p_g = p_atm,g + J nu_g R T / D_g(T) in the bed; the limit is the J at which
    that stops its driving force, dG(T, p_atm) + R T sum_g nu_g ln(p_g / p_atm,g) = 0
    (found by bisection on ln |J|; with one gas, J = D_g |p_eq - p_atm| / (R T |nu_g|)).

    Raises:
        ValueError: a reaction exchanges a gas without a diffusion coefficient here.
    """
    out = np.full((len(atmosphere_names) * grid.size, len(reactions)), np.inf)
    RT = R_CM3_ATM * grid  # cm^3 atm / mol
    for r, spec in enumerate(reactions):
        rxn = spec.reaction
        terms = [(g, c) for g, c in rxn.coefficients.items() if g in gases and c != 0]
        if not terms:
            continue
        missing = [g for g, _ in terms if g not in GAS_DIFFUSIVITY_298K]
        if missing:
            raise ValueError(f"the powder bed has no diffusion coefficient for {', '.join(missing)} (reaction {r}); "
                             f"known: {', '.join(sorted(GAS_DIFFUSIVITY_298K))}")
        nu = np.array([c for _, c in terms])[:, None]
        D = np.array([GAS_DIFFUSIVITY_298K[g] for g, _ in terms])[:, None] * (grid / 298.15) ** FULLER_EXPONENT
        for a, atm in enumerate(atmosphere_names):
            pressures = {g: atmospheres[atm].get(g, trace_pressure) for g in gases}
            p_atm = np.array([pressures[g] for g, _ in terms])[:, None]
            reduced = rxn.gibbs(grid, pressures) / (R_GAS * grid)  # dG / RT at the furnace's pressures
            out[a * grid.size:(a + 1) * grid.size, r] = _bed_limit(reduced, nu, p_atm, nu * RT[None, :] / D)
    return np.ascontiguousarray(out)


def _bed_limit(reduced: np.ndarray, nu: np.ndarray, p_atm: np.ndarray, rise: np.ndarray) -> np.ndarray:
    """(T,) |J| at which a reaction's driving force in the bed vanishes. ``reduced``: (T,)
    dG / RT at the furnace's pressures; ``nu``: (G, 1) its gases' coefficients; ``p_atm``:
    (G, 1) atm; ``rise``: (G, T) atm of each gas's bed pressure per unit J forward (nu R T / D).

    Gases it gives off that would fill the pores at 1 atm flow out instead: they are held at
    1 atm (shared by their pore fractions), and only the gases it takes up, which must still
    diffuse in, limit it (none: inf)."""
    direction = -np.sign(reduced)  # +1: runs forward (its nu > 0 gases released), -1: backward
    slope = direction[None, :] * rise  # p_g = p_atm + |J| slope
    released = slope > 0
    J = _vanishing(reduced, direction, nu, p_atm, slope)
    local = np.where(released, p_atm + J[None, :] * slope, 0.0)
    fills = local.sum(axis=0) >= ONE_ATM
    if not fills.any():
        return J
    held = np.maximum(ONE_ATM * local / np.maximum(local.sum(axis=0), 1e-300), p_atm)  # the pore gas at 1 atm
    shift = (nu * np.log(np.where(released, held / p_atm, 1.0))).sum(axis=0)
    J_in = _vanishing(reduced + shift, direction, nu, p_atm, np.where(released, 0.0, slope))
    takes_up = (slope < 0).any(axis=0)
    return np.where(fills, np.where(takes_up, J_in, np.inf), J)


def _vanishing(reduced: np.ndarray, direction: np.ndarray, nu: np.ndarray, p_atm: np.ndarray,
               slope: np.ndarray) -> np.ndarray:
    """(T,) |J| > 0 at which dG / RT = ``reduced`` + sum_g nu_g ln(p_g / p_atm,g), with
    p_g = p_atm,g + |J| slope_g, reaches 0 (bisection on ln |J|; at most e^60)."""
    with np.errstate(divide="ignore"):  # |J| may grow until a gas it takes up runs out in the pores
        room = np.where(slope < 0, p_atm / -np.where(slope < 0, slope, -1.0), np.inf).min(axis=0)
    lo, hi = np.full(reduced.shape, -120.0), np.minimum(np.log(room), 60.0)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        p = np.maximum(p_atm + np.exp(mid)[None, :] * slope, 1e-300)
        below = direction * (reduced + (nu * np.log(p / p_atm)).sum(axis=0)) < 0.0  # still downhill
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return np.exp(0.5 * (lo + hi))
