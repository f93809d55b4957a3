"""Models of the ARROWS3 YBCO campaign built on the Y-Ba-Cu-O system file, for validation.

The system (``envs/chemistry/data/arrows-ybco/YBa2Cu3O6.5.yaml``) names its phases as a
chemist writes them; the campaign writes some differently (``Ba2(CuO2)3`` for Ba2Cu3O6,
``BaY2CuO5`` for Y2BaCuO5, and ``Ba2YCu3O7`` for the target, whose stoichiometry in the
study's ``precursor_sets.csv`` is YBa2Cu3O6.5). :func:`campaign_names` maps one to the other
by composition, the target by declaration.

:class:`EquilibriumAtT` is the thermodynamic baseline: the assemblage of lowest Gibbs energy
at the firing temperature in air (O2 0.21 atm, CO2 4e-4 atm, ``atmospheres.yaml``), open to
O and C, at the cations the precursors bring: what the tables say the furnace would make
given infinite time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from synthgap.envs.chemistry import ChemicalSystem
from synthgap.envs.chemistry.observed import ARROWS_YBCO_TARGET, ObservedFiring
from synthgap.envs.chemistry.tables import EV_TO_J_PER_MOL

__all__ = ["YBCO_SYSTEM_FILE", "ybco_system", "campaign_names", "EquilibriumAtT"]

YBCO_SYSTEM_FILE = Path(str(resources.files("synthgap.envs.chemistry").joinpath(
    "data/arrows-ybco/YBa2Cu3O6.5.yaml")))
OPEN_ELEMENTS = ("O", "C")  # exchanged with the furnace atmosphere as O2 and CO2


def ybco_system(path: str | Path = YBCO_SYSTEM_FILE) -> ChemicalSystem:
    """The Y-Ba-Cu-O system of the campaign (or another system file in its place; the loader caches it)."""
    from synthgap.envs.chemistry.catalogue import load_system

    return load_system(str(path))


def campaign_names(system: ChemicalSystem, names: Sequence[str], target: str = ARROWS_YBCO_TARGET) -> dict[str, str]:
    """Campaign name -> system phase, for every name of ``names`` the system has.

    A name maps to the system's solid of the same composition; ``target`` maps to the
    system's (single) target whatever its written formula. Names with no such phase are
    left out (a phase the system does not know).
    """
    from pymatgen.core import Composition

    (system_target,) = tuple(system.targets)
    by_formula = {Composition(system.phases[s].formula).reduced_formula: s for s in system.solids}
    out = {}
    for name in names:
        if name == target:
            out[name] = system_target
            continue
        try:
            hit = by_formula.get(Composition(name).reduced_formula)
        except (ValueError, KeyError):
            hit = None
        if hit is not None:
            out[name] = hit
    return out


@dataclass(frozen=True)
class EquilibriumAtT:
    """The equilibrium assemblage at the firing temperature, in air, from the system's tables.

    Weight fractions of the phases of lowest grand potential (O and C open to the air's O2
    and CO2) at the precursor set's cations: the target's cation ratio, the weighed-in
    stoichiometry of every campaign set. It learns nothing from training rows.
    """

    system_file: str = str(YBCO_SYSTEM_FILE)
    target: str = ARROWS_YBCO_TARGET
    pressures: dict[str, float] = field(default_factory=lambda: {"O2": 0.21, "CO2": 4.0e-4})
    name: str = "equilibrium_at_T"

    def __call__(self, train: Sequence[ObservedFiring]) -> Callable[[ObservedFiring], dict[str, float]]:
        system = ybco_system(self.system_file)
        back = {v: k for k, v in campaign_names(system, [p for f in train for p in f.phases] + [self.target],
                                                self.target).items()}
        return lambda firing: {back.get(p, p): w for p, w in assemblage(system, firing.temperature_K,
                                                                          self.pressures).items()}


def assemblage(system: ChemicalSystem, T: float, pressures: dict[str, float]) -> dict[str, float]:
    """Equilibrium weight fractions at ``T`` (K) of the system's target cation composition."""
    return dict(_assemblage(system, float(T), tuple(sorted(pressures.items()))))


@lru_cache(maxsize=256)
def _assemblage(system: ChemicalSystem, T: float, pressures: tuple) -> tuple:
    from pymatgen.analysis.phase_diagram import GrandPotentialPhaseDiagram, PDEntry
    from pymatgen.core import Composition, Element

    p = dict(pressures)
    mu_o = float(system.phases["O2"].chemical_potential(T, p["O2"])) / 2 / EV_TO_J_PER_MOL
    mu_c = float(system.phases["CO2"].chemical_potential(T, p["CO2"])) / EV_TO_J_PER_MOL - 2 * mu_o
    entries = [PDEntry(Composition(ph.formula), float(ph.formation_gibbs(T)) / EV_TO_J_PER_MOL, name=ph.name)
               for ph in system.phases.values() if not ph.is_gas]
    entries += [PDEntry(Composition(el), 0.0, name=el) for el in system.elements]
    gpd = GrandPotentialPhaseDiagram(entries, {Element("O"): mu_o, Element("C"): mu_c})
    (target,) = tuple(system.targets)
    cations = Composition({el: n for el, n in Composition(system.phases[target].formula).items()
                           if str(el) not in OPEN_ELEMENTS})
    masses = {}
    for entry, atom_fraction in gpd.get_decomposition(cations).items():
        comp = entry.original_entry.composition
        open_free = sum(n for el, n in comp.items() if str(el) not in OPEN_ELEMENTS)
        masses[entry.original_entry.name] = atom_fraction * cations.num_atoms / open_free * comp.weight
    total = sum(masses.values())
    return tuple((name, float(m / total)) for name, m in masses.items() if m > 0)


@dataclass(frozen=True)
class FiringProtocol:
    """The protocol assumed for every firing of the campaign (its log gives only the
    temperature): a stated assumption, and the sensitivity of the scores to it is reported.

    Attributes: ramp_rate and cooling_rate K/min, dwell_time h, milling_time h.
    """

    ramp_rate: float = 10.0
    dwell_time: float = 4.0
    cooling_rate: float = 10.0
    milling_time: float = 0.0


@dataclass(frozen=True)
class _Record:
    recipe: object
    xrd_phase_fractions: dict
    furnace: int = 0


def campaign_recipes(system: ChemicalSystem, firings: Sequence[ObservedFiring], protocol: FiringProtocol):
    """(recipes, (n, P) mol weighed in) for ``firings``: each set's amounts from the study's
    ``precursor_sets.csv`` (its balanced amounts per YBa2Cu3O6.5), else the system's
    cation stoichiometry.

    Raises:
        ValueError: a precursor the system does not have.
    """
    import numpy as np

    from synthgap.envs.chemistry import Recipe
    from synthgap.envs.chemistry.firing import network_for
    from synthgap.envs.chemistry.stoichiometry import precursor_amounts

    (target,) = tuple(system.targets)
    sets = {frozenset(s): s for s in system.targets[target].precursor_sets}
    solids = network_for(system).solids
    table = _study_amounts(system)
    recipes, initial = [], []
    for f in firings:
        names = campaign_names(system, f.precursors)
        missing = [p for p in f.precursors if p not in names]
        if missing:
            raise ValueError(f"experiment {f.experiment}: precursor(s) {', '.join(missing)} not in the system "
                             f"{system.name} ({', '.join(system.precursors)})")
        key = frozenset(names[p] for p in f.precursors)
        if key not in sets:
            raise ValueError(f"experiment {f.experiment}: precursor set {' + '.join(f.precursors)} is not one of "
                             f"{system.name}'s sets; add it to the system file's precursor_sets")
        recipes.append(Recipe(target, tuple(sets[key]), milling_time=protocol.milling_time,
                              ramp_rate=protocol.ramp_rate, dwell_temperature=f.temperature_K,
                              dwell_time=protocol.dwell_time, cooling_rate=protocol.cooling_rate))
        amounts = table.get(key)
        if amounts is None:
            initial.append(precursor_amounts(system, target, tuple(sets[key])))
        else:
            row = np.zeros(len(solids))
            for p, a in amounts.items():
                row[solids.index(p)] = a
            initial.append(row)
    return recipes, np.array(initial)


@lru_cache(maxsize=4)
def _study_amounts(system: ChemicalSystem) -> dict:
    import csv

    path = Path(str(resources.files("synthgap.envs.chemistry").joinpath("data/arrows-ybco/precursor_sets.csv")))
    out = {}
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            pre = [p.strip() for p in row["Precursors"].split("+")]
            names = campaign_names(system, pre)
            if len(names) == len(pre):
                out[frozenset(names.values())] = dict(zip(names.values(), (float(a) for a in row["Amounts"].split("+")),
                                                          strict=True))
    return out


@dataclass(frozen=True)
class FittedKinetics:
    """The Y-Ba-Cu-O kinetic model with every reaction's Ea and A fitted to the training firings.

    The fit is :func:`synthgap.envs.lab.kinetic_calibration.fit_kinetics` (maximum a
    posteriori, XRD weight fractions of every phase) around the system file's prior, whose
    onsets are good to about +- 150 K: Ea relative sd ``ea_rel_sd``, ln A sd ``ln_a_sd``
    (assumptions). One furnace, its offset fitted beside the rates. Only the maximum is used:
    the fit's Metropolis chains are cut to a token run (the intervals are not reported here).
    """

    system_file: str = str(YBCO_SYSTEM_FILE)
    target: str = ARROWS_YBCO_TARGET
    protocol: FiringProtocol = FiringProtocol()
    ea_rel_sd: float = 0.2
    ln_a_sd: float = 3.0
    name: str = "fitted_kinetics"

    def __call__(self, train: Sequence[ObservedFiring]) -> Callable[[ObservedFiring], dict[str, float]]:
        from dataclasses import replace

        from synthgap.envs.lab.kinetic_calibration import fit_kinetics
        from synthgap.envs.lab.world import world_prior

        system = ybco_system(self.system_file)
        names = campaign_names(system, [p for f in train for p in f.phases] + [self.target], self.target)
        recipes, initial = campaign_recipes(system, train, self.protocol)
        records = [_Record(r, {names[p]: w for p, w in f.phases.items() if p in names})
                   for r, f in zip(recipes, train, strict=True)]
        prior = replace(world_prior(), ea_rel_sd=self.ea_rel_sd, ln_a_sd=self.ln_a_sd)
        posterior = fit_kinetics(system, records, prior, initial=initial, chains=2, steps=3)
        return _Predictor(posterior.belief(), {v: k for k, v in names.items()}, self.protocol)


@dataclass(frozen=True)
class _Predictor:
    belief: ChemicalSystem
    back: dict
    protocol: FiringProtocol

    def __call__(self, firing: ObservedFiring) -> dict[str, float]:
        from synthgap.envs.chemistry.firing import fire

        recipes, initial = campaign_recipes(self.belief, [firing], self.protocol)
        fired = fire(self.belief, recipes, initial=initial)
        return {self.back.get(p, p): float(w) for p, w in zip(fired.phases, fired.phase_fractions[0], strict=True)
                if w > 1e-6}
