"""Gibbs energies of phases at temperature: solids by one precedence of sources, gases at pressure.

Reactions between these phases are :mod:`.reactions`; :mod:`.thermo` re-exports both.

Conventions (one place, used everywhere):

* energies are J/mol per formula unit of the phase as written, on the *formation* basis
  (elements in their standard states have G = 0 at every temperature);
* one precedence of sources for dfG(T) of a phase (:meth:`Phase.gibbs_route`):

  1. an assessed G(T) table, NIST-JANAF first, then FREED (``tables.assessed_gibbs_table``;
     phase transitions and melting are in the table where the source has them);
  2. dfH(298) and S0(298) with a temperature-dependent Cp(T) fit (Shomate, JANAF or Perry
     via ``chemicals``), integrated: dfH(T) = dfH + int dfCp dT,
     dfS(T) = dfS + int dfCp / T dT;
  3. the same with a heat capacity estimated by Neumann-Kopp additivity from other phases
     (each of them by its own route), marked as an estimate;
  4. the same with a constant Cp(298);

  where dfS = S0 - sum(nu_el S0_el) and dfCp = Cp - sum(nu_el Cp_el) with the elements'
  own Cp(T) fits (their phase transitions are ignored on routes 2-4). A solid with no heat
  capacity from any route is refused (:class:`MissingDataError`), never given dfCp = 0;
* gases: dfG(T) from NIST-JANAF, linear in T between table points; at partial pressure p
  (atm), mu = mu0(T) + R T ln p.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import tables
from .tables import CP_GRID, R_GAS, T_STANDARD, GibbsTable, HeatCapacityFit, MissingDataError, Sourced

# Elements whose standard state is a diatomic gas: per-atom data is half the molecule's.
DIATOMIC_GASES = {"O": "O2", "N": "N2", "H": "H2", "F": "F2", "Cl": "Cl2"}
# CAS numbers of the standard-state form where a formula search would find another one.
ELEMENT_CAS = {"C": "7782-42-5", "O": "7782-44-7", "N": "7727-37-9", "H": "1333-74-0"}


class ThermoError(ValueError):
    """A thermodynamic request that cannot be answered (bad reaction, bad temperature)."""


@dataclass(frozen=True)
class ElementReference:
    """Standard-state entropy and heat capacity of one element, per atom, J/(mol K).

    Attributes:
        heat_capacity: Cp(298 K) (CRC), or None.
        heat_capacity_fit: Cp(T) per atom, or None (then Cp(298) is used at every T).
    """

    symbol: str
    entropy: Sourced
    heat_capacity: Sourced | None
    heat_capacity_fit: HeatCapacityFit | None = None

    def cp_on_grid(self) -> np.ndarray:
        """Cp per atom on ``tables.CP_GRID``, J/(mol K).

        Raises:
            MissingDataError: the element has no heat capacity in any table.
        """
        if self.heat_capacity_fit is not None:
            return np.asarray(self.heat_capacity_fit.values)
        if self.heat_capacity is None:
            raise MissingDataError(f"no heat capacity for the element {self.symbol} in any table")
        return np.full(CP_GRID.shape, self.heat_capacity.value)


@lru_cache(maxsize=128)
def element_reference(symbol: str) -> ElementReference:
    """Per-atom S0, Cp(298) and Cp(T) of an element in its standard state (via ``chemicals``)."""
    gas = symbol in DIATOMIC_GASES
    formula = DIATOMIC_GASES.get(symbol, symbol)
    cas = ELEMENT_CAS.get(symbol) or tables.cas_for_formula(formula)
    if cas is None:
        raise MissingDataError(f"no CAS number found for element {symbol}")
    per = 2.0 if gas else 1.0
    s = tables.standard_entropy(cas, formula, gas=gas)
    try:
        cp = tables.heat_capacity(cas, formula, gas=gas)
        cp = Sourced(cp.value / per, cp.source)
    except MissingDataError:
        cp = None
    fit = tables.heat_capacity_fit(cas, formula, gas=gas)
    if fit is not None and per != 1.0:
        fit = HeatCapacityFit(tuple(v / per for v in fit.values), fit.source + " per atom", fit.t_min, fit.t_max)
    return ElementReference(symbol, Sourced(s.value / per, s.source), cp, fit)


def check_temperature(T: float | np.ndarray) -> np.ndarray:
    """Validate temperatures (K) and return them as a float array."""
    arr = np.asarray(T, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0) or np.any(arr > 6000):
        bad = arr[~(np.isfinite(arr) & (arr > 0) & (arr <= 6000))].ravel()[0]
        raise ThermoError(f"temperature must be in (0, 6000] K, got {bad}")
    return arr


def _thermal_from_cp(dcp: np.ndarray, T: np.ndarray) -> np.ndarray:
    """int_T0^T dfCp dT - T int_T0^T dfCp / T dT, J/mol, for dfCp on ``CP_GRID``.

    Trapezoid integrals on the 1 K grid; below the grid's first point dfCp is held.
    """
    grid = CP_GRID
    dh = np.concatenate(([0.0], np.cumsum(0.5 * (dcp[1:] + dcp[:-1]) * np.diff(grid))))
    over_t = dcp / grid
    ds = np.concatenate(([0.0], np.cumsum(0.5 * (over_t[1:] + over_t[:-1]) * np.diff(grid))))
    dh -= np.interp(T_STANDARD, grid, dh)
    ds -= np.interp(T_STANDARD, grid, ds)
    low = T < grid[0]
    h = np.interp(T, grid, dh) + np.where(low, dcp[0] * (T - grid[0]), 0.0)
    s = np.interp(T, grid, ds) + np.where(low, dcp[0] * np.log(np.where(low, T, grid[0]) / grid[0]), 0.0)
    return h - T * s


@dataclass(frozen=True)
class Phase:
    """One phase of the catalogue: a solid or a gas with its thermochemical data.

    Which data give dfG(T) follows the module's precedence (see :meth:`gibbs_route`).

    Attributes:
        name: label used in recipes and tables (usually the formula).
        formula: chemical formula of one formula unit.
        state: "solid" or "gas".
        enthalpy: standard enthalpy of formation at 298 K, J/mol per formula unit
            (solids; None for elements, whose value is 0 by definition). For a phase with
            an assessed table it is the table's own value (``GibbsTable.standard_values``).
        entropy: standard molar entropy at 298 K, J/(mol K) (solids).
        heat_capacity: molar heat capacity at 298 K, J/(mol K), or None.
        gibbs_table: dfG(T) from an assessed table (solids) or NIST-JANAF (gases).
        heat_capacity_fit: Cp(T) fit, or None.
        heat_capacity_parts: (phase, coefficient) pairs whose heat capacities add up to
            this one's (a Neumann-Kopp estimate), or empty.
        hypothetical: True for predicted phases nobody has made (unobtainium candidates).
    """

    name: str
    formula: str
    state: str = "solid"
    enthalpy: Sourced | None = None
    entropy: Sourced | None = None
    heat_capacity: Sourced | None = None
    gibbs_table: GibbsTable | None = None
    hypothetical: bool = False
    heat_capacity_fit: HeatCapacityFit | None = None
    heat_capacity_parts: tuple[tuple[Phase, float], ...] = ()

    @property
    def element_amounts(self) -> dict[str, float]:
        """Atoms of each element per formula unit."""
        return dict(_element_amounts(self.formula))

    @property
    def atoms(self) -> float:
        """Atoms per formula unit."""
        return float(sum(self.element_amounts.values()))

    @property
    def is_element(self) -> bool:
        return len(self.element_amounts) == 1

    @property
    def is_gas(self) -> bool:
        return self.state == "gas"

    def gibbs_route(self) -> str:
        """Which source gives dfG(T): "zero (element)", "table", "Cp(T) fit",
        "Neumann-Kopp estimate" or "constant Cp(298)".

        Raises:
            MissingDataError: a solid with no heat capacity from any route.
        """
        if self.is_element and (not self.is_gas or self.gibbs_table is None):
            return "zero (element)"
        if self.gibbs_table is not None:
            return "table"
        if self.heat_capacity_fit is not None:
            return "Cp(T) fit"
        if self.heat_capacity_parts:
            return "Neumann-Kopp estimate"
        if self.heat_capacity is not None:
            return "constant Cp(298)"
        raise MissingDataError(
            f"{self.name}: no heat capacity in any table; give heat_capacity (a value with its "
            "source, or additivity from other phases) in the system file"
        )

    def formation_entropy(self) -> float:
        """dfS at 298 K, J/(mol K) per formula unit."""
        if self.entropy is None:
            raise MissingDataError(f"{self.name}: no standard entropy S0")
        return self.entropy.value - sum(
            n * element_reference(el).entropy.value for el, n in self.element_amounts.items()
        )

    def formation_heat_capacity(self) -> float:
        """dfCp at 298 K, J/(mol K) per formula unit, by the phase's own route.

        Raises:
            MissingDataError: no heat capacity for the phase or one of its elements.
        """
        route = self.gibbs_route()
        if route == "zero (element)":
            return 0.0
        if route == "table":
            return self.gibbs_table.standard_values()[2]
        if route == "Neumann-Kopp estimate":
            return sum(c * p.formation_heat_capacity() for p, c in self.heat_capacity_parts)
        return float(np.interp(T_STANDARD, CP_GRID, self._formation_cp_on_grid()))

    def _formation_cp_on_grid(self) -> np.ndarray:
        """dfCp on ``CP_GRID``, J/(mol K), for routes 2 and 4."""
        route = self.gibbs_route()
        if route == "Cp(T) fit":
            cp = np.asarray(self.heat_capacity_fit.values)
        elif route == "constant Cp(298)":
            cp = np.full(CP_GRID.shape, self.heat_capacity.value)
        else:
            raise ThermoError(f"{self.name}: dfCp is not defined on route {route!r}")
        for el, n in self.element_amounts.items():
            cp = cp - n * element_reference(el).cp_on_grid()
        return cp

    def thermal_gibbs(self, T: np.ndarray) -> np.ndarray:
        """The heat-capacity part of dfG: dfG(T) - (dfH - T dfS) at 298 K values, J/mol.

        Zero for a constant dfCp of 0; a Neumann-Kopp estimate sums its parts' terms.
        """
        route = self.gibbs_route()
        if route == "zero (element)":
            return np.zeros_like(T)
        if route == "table":
            dH, dS, _ = self.gibbs_table.standard_values()
            return self.gibbs_table(T) - (dH - T * dS)
        if route == "Neumann-Kopp estimate":
            return sum(c * p.thermal_gibbs(T) for p, c in self.heat_capacity_parts)
        return _thermal_from_cp(self._formation_cp_on_grid(), T)

    def formation_gibbs(self, T: float | np.ndarray) -> np.ndarray:
        """Standard Gibbs energy of formation dfG(T), J/mol per formula unit.

        Args:
            T: temperature(s), K, any shape.
        """
        T = check_temperature(T)
        route = self.gibbs_route()
        if route == "zero (element)":
            return np.zeros_like(T)
        if route == "table":
            return self.gibbs_table(T)
        if self.enthalpy is None or self.entropy is None:
            raise MissingDataError(f"{self.name}: enthalpy and entropy are both needed for G(T)")
        return self.enthalpy.value - T * self.formation_entropy() + self.thermal_gibbs(T)

    def chemical_potential(self, T: float | np.ndarray, pressure: float = 1.0) -> np.ndarray:
        """dfG(T) plus R T ln p for gases at partial pressure ``pressure`` (atm), J/mol."""
        g = self.formation_gibbs(T)
        if self.is_gas:
            if not pressure > 0:
                raise ThermoError(f"partial pressure of {self.name} must be > 0 atm, got {pressure}")
            g = g + R_GAS * check_temperature(T) * np.log(pressure)
        return g

    def sources(self) -> dict[str, str]:
        """Provenance of every value, for tables and reports."""
        out = {}
        for key in ("enthalpy", "entropy", "heat_capacity"):
            v = getattr(self, key)
            if v is not None:
                text = v.source + (f" [estimate: {v.method}]" if v.estimate else "")
                if v.uncertainty is not None:
                    text += f" (+/- {v.uncertainty:.3g})"
                out[key] = text
        if self.heat_capacity_fit is not None:
            out["heat_capacity_fit"] = f"{self.heat_capacity_fit.source} [{self.heat_capacity_fit.method}]"
        if self.gibbs_table is not None:
            out["gibbs"] = (f"{self.gibbs_table.source}, {self.gibbs_table.temperatures[0]:.0f}-"
                            f"{self.gibbs_table.t_max:.0f} K, end segments extended beyond")
        if not self.is_element or self.is_gas:
            try:
                out["gibbs_route"] = self.gibbs_route()
            except MissingDataError as exc:
                out["gibbs_route"] = f"refused: {exc}"
        return out


@lru_cache(maxsize=1024)
def _element_amounts(formula: str) -> tuple[tuple[str, float], ...]:
    """(element, atoms per formula unit) pairs, parsed once per formula."""
    from pymatgen.core import Composition

    return tuple((str(el), float(n)) for el, n in Composition(formula).items())


def tabled_solid(name: str, formula: str, table: GibbsTable, hypothetical: bool = False) -> Phase:
    """A solid whose dfG(T) is an assessed table; dfH and S0 at 298 K derived from it."""
    dH, dS, dCp = table.standard_values()
    how = f"from {table.source}: dfG = a + bT + cT lnT through 300-500 K"
    s0 = dS + sum(n * element_reference(el).entropy.value for el, n in _element_amounts(formula))
    return Phase(
        name, formula,
        enthalpy=Sourced(dH, how),
        entropy=Sourced(s0, how + "; S0 = dfS + sum of the elements' S0"),
        gibbs_table=table,
        hypothetical=hypothetical,
    )


def heat_capacity_298(phase: Phase) -> float:
    """Cp(298 K) of a phase, J/(mol K), by its own route (dfCp plus the elements' Cp).

    Raises:
        MissingDataError: no heat capacity for the phase or one of its elements.
    """
    if phase.heat_capacity is not None:
        return phase.heat_capacity.value
    return phase.formation_heat_capacity() + sum(
        n * float(np.interp(T_STANDARD, CP_GRID, element_reference(el).cp_on_grid()))
        for el, n in phase.element_amounts.items()
    )


def neumann_kopp_from_elements(formula: str) -> Sourced:
    """Cp(298) as the sum of the elements' Cp(298) (Neumann-Kopp), marked as an estimate.

    Raises:
        MissingDataError: an element has no Cp(298).
    """
    total = 0.0
    for el, n in _element_amounts(formula):
        ref = element_reference(el).heat_capacity
        if ref is None:
            raise MissingDataError(f"no heat capacity for {formula!r}, nor for its element {el}")
        total += n * ref.value
    return Sourced(total, "estimate", estimate=True,
                   method="Neumann-Kopp rule from the elements' Cp(298) (dfCp = 0 at every T)")


def phase_from_tables(
    formula: str, name: str | None = None, cas: str | None = None, assessed: str | None = "first"
) -> Phase:
    """Build a phase from the bundled tables alone (no catalogue entry needed).

    Gases come from NIST-JANAF, elements are zero by definition; a solid takes an assessed
    G(T) table (NIST-JANAF, then FREED) if one has it, else dfH from pymatgen's experimental
    table and S0, Cp(T) or Cp(298) from ``chemicals``; with no heat capacity at all, Cp is
    estimated by Neumann-Kopp from the elements and marked so.

    Args:
        assessed: "first" (the precedence), a source name ("NIST-JANAF", "FREED") to take
            that table only, or None to skip the assessed tables (for comparisons).

    Raises:
        MissingDataError: naming the value that no table holds.
    """
    from pymatgen.core import Composition

    comp = Composition(formula)  # raises ValueError on unknown elements
    name = name or formula
    elements = [str(e) for e in comp.elements]
    if len(elements) == 1:
        el = elements[0]
        gas = el in DIATOMIC_GASES
        return Phase(name, formula, state="gas" if gas else "solid")
    key = tables.gas_formula_key(formula)
    if key is not None:
        return Phase(name, formula, state="gas", gibbs_table=gas_table(formula))
    if assessed == "first":
        table = tables.assessed_gibbs_table(formula)
    elif assessed is None:
        table = None
    elif assessed in tables.ASSESSED_SOURCES:
        table = tables.assessed_gibbs_tables(formula).get(assessed)
        if table is None:
            raise MissingDataError(f"{assessed} has no G(T) table for {formula!r}")
    else:
        raise ThermoError(f"assessed must be 'first', None or one of {list(tables.ASSESSED_SOURCES)}, "
                          f"got {str(assessed)[:20]!r}")
    if table is not None:
        return tabled_solid(name, formula, table)
    enthalpy = tables.formation_enthalpy(formula)
    cas = cas or tables.cas_for_formula(formula)
    if cas is None:
        raise MissingDataError(
            f"no standard entropy (S0) for {formula!r}: chemicals knows no CAS number for it; "
            "give it in a system data file"
        )
    entropy = tables.standard_entropy(cas, formula)
    try:
        cp = tables.heat_capacity(cas, formula)
    except MissingDataError:
        cp = None
    fit = tables.heat_capacity_fit(cas, formula)
    if cp is None and fit is None:
        cp = neumann_kopp_from_elements(formula)
    return Phase(name, formula, enthalpy=enthalpy, entropy=entropy, heat_capacity=cp, heat_capacity_fit=fit)


def gas_table(formula: str) -> GibbsTable:
    """NIST-JANAF dfG(T) of a gas as a :class:`GibbsTable`."""
    grid, values, source = tables.gas_formation_gibbs_table(formula)
    return GibbsTable(grid, values, source)
