"""Stoichiometry of a recipe's precursors: moles per mole of target <-> grams to weigh.

One owner for the arithmetic every lab does: the twin (what to weigh, what a dispensed
powder puts into the crucible), the hardware lab (what to command the dosing head) and
the lab emulator (what the weighed masses fire as). Molar masses come from pymatgen's
``Composition``; amounts are in mol per mol of target intended (the chemistry's basis),
masses in g for a batch of ``batch_mass_g`` g of target.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np

from .catalogue import ChemicalSystem
from .system_model import per_structure

__all__ = ["amount_per_target", "amounts_from_masses", "molar_mass", "precursor_amounts", "precursor_masses"]

CONSERVED_BY_GAS = ("O", "C", "H")  # elements that come and go with the atmosphere's gases


@lru_cache(maxsize=1024)
def molar_mass(formula: str) -> float:
    """Molar mass of ``formula``, g/mol (pymatgen ``Composition.weight``)."""
    from pymatgen.core import Composition

    return float(Composition(formula).weight)


@per_structure(maxsize=64)
def precursor_amounts(system: ChemicalSystem, target: str, precursors: tuple[str, ...]) -> np.ndarray:
    """(P,) mol of each solid (``system.solids`` order) to make 1 mol of target with exact
    cation stoichiometry; zero for the solids not in ``precursors``. Cached: do not modify.

    Solved on the elements other than O, C and H (those come and go as gases).

    Raises:
        ValueError: the precursors cannot supply the target's cations.
    """
    solids = system.solids
    elements = [e for e in system.elements if e not in CONSERVED_BY_GAS]

    def cations(name: str) -> list[float]:
        amounts = system.phases[name].element_amounts
        return [float(amounts.get(e, 0.0)) for e in elements]

    M = np.array([cations(p) for p in precursors], dtype=float).reshape(len(precursors), len(elements)).T
    want = np.array(cations(target), dtype=float)
    x, *_ = np.linalg.lstsq(M, want, rcond=None)
    if not np.allclose(M @ x, want, atol=1e-9) or np.any(x < -1e-12):
        raise ValueError(f"precursors {precursors} cannot supply the cations of {target}")
    out = np.zeros(len(solids))
    out[[solids.index(p) for p in precursors]] = x
    return out


@per_structure(maxsize=256)
def _exact_masses(system: ChemicalSystem, target: str, precursors: tuple[str, ...],
                  batch_mass_g: float) -> tuple[tuple[str, float], ...]:
    mol = precursor_amounts(system, target, precursors)
    n_target = batch_mass_g / molar_mass(system.phases[target].formula)
    solids = system.solids
    return tuple((p, float(mol[solids.index(p)]) * n_target * molar_mass(system.phases[p].formula))
                 for p in precursors)


def precursor_masses(system: ChemicalSystem, target: str, precursors: tuple[str, ...] | list[str],
                     batch_mass_g: float, excess: float = 0.0) -> list[tuple[str, float]]:
    """(precursor, g) to weigh for ``batch_mass_g`` g of ``target``, in precursor order; the
    first precursor gets ``excess`` (a fraction: 0.1 = 10 % more)."""
    base = _exact_masses(system, target, tuple(precursors), float(batch_mass_g))
    first = base[0][0]
    return [(p, m * (1.0 + excess) if p == first else m) for p, m in base]


def amount_per_target(system: ChemicalSystem, target: str, phase: str, mass_g: float,
                      batch_mass_g: float) -> float:
    """mol of ``phase`` per mol of target intended in ``mass_g`` g of it, for a batch of
    ``batch_mass_g`` g of ``target``."""
    n_target = batch_mass_g / molar_mass(system.phases[target].formula)
    return mass_g / molar_mass(system.phases[phase].formula) / n_target


def amounts_from_masses(system: ChemicalSystem, target: str, masses_g: Mapping[str, float],
                        batch_mass_g: float) -> np.ndarray:
    """(P,) mol of each solid (``system.solids`` order) per mol of target intended, from the
    grams of each phase in the crucible (a batch of ``batch_mass_g`` g of ``target``)."""
    out = np.zeros(len(system.solids))
    for phase, g in masses_g.items():
        out[system.solids.index(phase)] += amount_per_target(system, target, phase, float(g), batch_mass_g)
    return out
