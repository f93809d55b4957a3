"""Convex hulls: the 0 K view a predictor sees, and the hull at the furnace's temperature.

The 0 K view builds pymatgen's ``PhaseDiagram`` on standard enthalpies of formation of the
solids only (optionally perturbed by a model error, as a GNN's ~0.03-0.1 eV/atom); the
finite-temperature view uses dfG(T) of every phase, gases at their partial pressures.
Energies above the hull are eV/atom.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .catalogue import ChemicalSystem, load_atmospheres
from .tables import EV_TO_J_PER_MOL

#: Gas partial pressures (atm) of the finite-T hull unless told otherwise: air.
DEFAULT_PRESSURES: dict[str, float] = load_atmospheres()["air"]


@dataclass
class HullView:
    """One system's convex hull at one temperature.

    Attributes:
        temperature: K (0 means the enthalpy-only view).
        phase_diagram: pymatgen PhaseDiagram on the entries.
        e_above_hull: phase name -> energy above the hull, eV/atom.
        formation_energy: phase name -> formation energy, eV/atom.
    """

    temperature: float
    phase_diagram: object
    e_above_hull: dict[str, float]
    formation_energy: dict[str, float]

    @property
    def stable(self) -> list[str]:
        return [p for p, e in self.e_above_hull.items() if e < 1e-9]


def hull_entries(
    system: ChemicalSystem,
    T: float,
    pressures: Mapping[str, float] | None = None,
    model_error: float = 0.0,
    rng: np.random.Generator | None = None,
) -> list:
    """pymatgen ``PDEntry`` objects (energy eV per formula unit) for the hull at ``T``.

    Args:
        T: temperature, K; 0 gives the enthalpy-only (0 K) view, without gases.
        pressures: gas partial pressures, atm (default: air).
        model_error: standard deviation, eV/atom, of a predictor's error added to the 0 K
            enthalpies (needs ``rng``).
    """
    from pymatgen.analysis.phase_diagram import PDEntry
    from pymatgen.core import Composition

    pressures = {**DEFAULT_PRESSURES, **(pressures or {})}
    entries = []
    for p in system.phases.values():
        comp = Composition(p.formula)
        if T == 0.0:
            if p.is_gas:
                continue
            g = 0.0 if p.is_element else p.enthalpy.value / EV_TO_J_PER_MOL
            if model_error and not p.is_element:
                if rng is None:
                    raise ValueError("model_error needs an rng")
                g += rng.normal(0.0, model_error) * comp.num_atoms
        else:
            g = float(p.chemical_potential(T, pressures.get(p.name, 1.0))) / EV_TO_J_PER_MOL
        entries.append(PDEntry(comp, g, name=p.name))
    have = {str(e.composition.elements[0]) for e in entries if e.composition.is_element}
    for el in system.elements:
        if el not in have:
            entries.append(PDEntry(Composition(el), 0.0, name=el))
    return entries


def hull_at(
    system: ChemicalSystem,
    T: float,
    pressures: Mapping[str, float] | None = None,
    model_error: float = 0.0,
    rng: np.random.Generator | None = None,
) -> HullView:
    """The convex hull of a system at temperature ``T`` (K); ``T = 0`` is the 0 K view."""
    from pymatgen.analysis.phase_diagram import PhaseDiagram

    if not (T == 0.0 or 0 < T <= 6000):
        raise ValueError(f"temperature must be 0 (the 0 K view) or in (0, 6000] K, got {T}")
    entries = hull_entries(system, T, pressures, model_error, rng)
    pd = PhaseDiagram(entries)
    names = set(system.phases)
    return HullView(
        temperature=T,
        phase_diagram=pd,
        e_above_hull={e.name: float(pd.get_e_above_hull(e)) for e in entries if e.name in names},
        formation_energy={e.name: float(pd.get_form_energy_per_atom(e)) for e in entries
                          if e.name in names},
    )
