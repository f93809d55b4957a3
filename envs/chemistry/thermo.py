"""Gibbs energies at temperature: phases, gases at partial pressure, and reactions.

Conventions (one place, used everywhere):

* energies are J/mol per formula unit of the phase as written, on the *formation* basis
  (elements in their standard states have G = 0 at every temperature);
* solids: dfG(T) = dfH + dfCp (T - T0) - T [dfS + dfCp ln(T / T0)], with T0 = 298.15 K,
  dfS = S0 - sum(nu_el S0_el) and dfCp = Cp - sum(nu_el Cp_el) (dfCp = 0, the Ellingham
  approximation, where a heat capacity is unknown); phase transitions of the elements are
  ignored;
* gases: dfG(T) from NIST-JANAF, linear in T between table points; at partial pressure p
  (atm), mu = mu0(T) + R T ln p.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import tables
from .tables import R_GAS, T_STANDARD, MissingDataError, Sourced

# Elements whose standard state is a diatomic gas: per-atom data is half the molecule's.
DIATOMIC_GASES = {"O": "O2", "N": "N2", "H": "H2", "F": "F2", "Cl": "Cl2"}
# CAS numbers of the standard-state form where a formula search would find another one.
ELEMENT_CAS = {"C": "7782-42-5", "O": "7782-44-7", "N": "7727-37-9", "H": "1333-74-0"}


class ThermoError(ValueError):
    """A thermodynamic request that cannot be answered (bad reaction, bad temperature)."""


@dataclass(frozen=True)
class ElementReference:
    """Standard-state entropy and heat capacity of one element, per atom, J/(mol K)."""

    symbol: str
    entropy: Sourced
    heat_capacity: Sourced | None


@lru_cache(maxsize=128)
def element_reference(symbol: str) -> ElementReference:
    """Per-atom S0 and Cp of an element in its standard state (CRC via ``chemicals``)."""
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
    return ElementReference(symbol, Sourced(s.value / per, s.source), cp)


def check_temperature(T: float | np.ndarray) -> np.ndarray:
    """Validate temperatures (K) and return them as a float array."""
    arr = np.asarray(T, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0) or np.any(arr > 6000):
        bad = arr[~(np.isfinite(arr) & (arr > 0) & (arr <= 6000))].ravel()[0]
        raise ThermoError(f"temperature must be in (0, 6000] K, got {bad}")
    return arr


@dataclass(frozen=True)
class Phase:
    """One phase of the catalogue: a solid or a gas with its thermochemical data.

    Attributes:
        name: label used in recipes and tables (usually the formula).
        formula: chemical formula of one formula unit.
        state: "solid" or "gas".
        enthalpy: standard enthalpy of formation at 298 K, J/mol per formula unit
            (solids; None for elements, whose value is 0 by definition).
        entropy: standard molar entropy at 298 K, J/(mol K) (solids).
        heat_capacity: molar heat capacity, J/(mol K), taken constant (solids), or None.
        gas_table: for gases, (temperatures K, dfG J/mol) from NIST-JANAF.
        hypothetical: True for predicted phases nobody has made (unobtainium candidates).
    """

    name: str
    formula: str
    state: str = "solid"
    enthalpy: Sourced | None = None
    entropy: Sourced | None = None
    heat_capacity: Sourced | None = None
    gas_table: tuple[tuple[float, ...], tuple[float, ...], str] | None = None
    hypothetical: bool = False
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

    def formation_entropy(self) -> float:
        """dfS at 298 K, J/(mol K) per formula unit."""
        assert self.entropy is not None
        return self.entropy.value - sum(
            n * element_reference(el).entropy.value for el, n in self.element_amounts.items()
        )

    def formation_heat_capacity(self) -> float:
        """dfCp, J/(mol K) per formula unit; 0 (Ellingham) when any Cp is unknown."""
        if self.heat_capacity is None:
            return 0.0
        total = self.heat_capacity.value
        for el, n in self.element_amounts.items():
            ref = element_reference(el).heat_capacity
            if ref is None:
                return 0.0
            total -= n * ref.value
        return total

    def formation_gibbs(self, T: float | np.ndarray) -> np.ndarray:
        """Standard Gibbs energy of formation dfG(T), J/mol per formula unit.

        Args:
            T: temperature(s), K, any shape.
        """
        T = check_temperature(T)
        if self.is_element and not self.is_gas or (self.is_element and self.gas_table is None):
            return np.zeros_like(T)
        if self.is_gas:
            assert self.gas_table is not None
            grid, values, _ = self.gas_table
            g = np.interp(T, grid, values)
            # linear extrapolation beyond the table (NIST grid stops at 2000 K)
            hi = T > grid[-1]
            if np.any(hi):
                slope = (values[-1] - values[-2]) / (grid[-1] - grid[-2])
                g = np.where(hi, values[-1] + slope * (T - grid[-1]), g)
            return g
        if self.enthalpy is None or self.entropy is None:
            raise MissingDataError(f"{self.name}: enthalpy and entropy are both needed for G(T)")
        dcp = self.formation_heat_capacity()
        dS = self.formation_entropy()
        return (
            self.enthalpy.value
            + dcp * (T - T_STANDARD)
            - T * (dS + dcp * np.log(T / T_STANDARD))
        )

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
                out[key] = v.source + (f" [estimate: {v.method}]" if v.estimate else "")
        if self.gas_table is not None:
            out["gibbs"] = self.gas_table[2]
        return out


@lru_cache(maxsize=1024)
def _element_amounts(formula: str) -> tuple[tuple[str, float], ...]:
    """(element, atoms per formula unit) pairs, parsed once per formula."""
    from pymatgen.core import Composition

    return tuple((str(el), float(n)) for el, n in Composition(formula).items())


def phase_from_tables(formula: str, name: str | None = None, cas: str | None = None) -> Phase:
    """Build a phase from the bundled tables alone (no catalogue entry needed).

    Gases come from NIST-JANAF, elements are zero by definition, solids take dfH from
    pymatgen's experimental table and S0 and Cp from the CRC table (via ``chemicals``).

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
        return Phase(name, formula, state="gas", gas_table=tables.gas_formation_gibbs_table(formula))
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
    return Phase(name, formula, enthalpy=enthalpy, entropy=entropy, heat_capacity=cp)


@dataclass(frozen=True)
class BalancedReaction:
    """A balanced reaction between phases, with its free energy at temperature.

    Attributes:
        coefficients: phase name -> stoichiometric coefficient (negative for reactants).
        phases: phase name -> Phase.
    """

    coefficients: Mapping[str, float]
    phases: Mapping[str, Phase]

    @property
    def equation(self) -> str:
        def side(sign: int) -> str:
            terms = []
            for name, c in self.coefficients.items():
                if c * sign > 0:
                    c = abs(c)
                    terms.append(name if abs(c - 1) < 1e-9 else f"{c:g} {name}")
            return " + ".join(terms)

        return f"{side(-1)} -> {side(1)}"

    def gibbs(self, T: float | np.ndarray, pressures: Mapping[str, float] | None = None) -> np.ndarray:
        """Reaction Gibbs energy dG(T, p), J per mol of reaction as written.

        Args:
            T: temperature(s), K.
            pressures: partial pressures (atm) of gaseous phases by name; 1 atm if absent.
        """
        pressures = dict(pressures or {})
        total = np.zeros_like(check_temperature(T))
        for name, c in self.coefficients.items():
            phase = self.phases[name]
            p = pressures.get(name, 1.0)
            total = total + c * phase.chemical_potential(T, p)
        return total

    def crossover_temperatures(
        self,
        pressures: Mapping[str, float] | None = None,
        T_min: float = 300.0,
        T_max: float = 3000.0,
    ) -> list[float]:
        """Temperatures (K) in [T_min, T_max] where dG(T, p) changes sign."""
        grid = np.arange(T_min, T_max + 1.0, 1.0)
        g = self.gibbs(grid, pressures)
        idx = np.nonzero(np.sign(g[:-1]) * np.sign(g[1:]) < 0)[0]
        out = []
        for i in idx:
            t0, t1, g0, g1 = grid[i], grid[i + 1], g[i], g[i + 1]
            out.append(float(t0 - g0 * (t1 - t0) / (g1 - g0)))
        return out


def balance(
    reactants: Mapping[str, Phase] | list[Phase], products: Mapping[str, Phase] | list[Phase]
) -> BalancedReaction:
    """Balance a reaction with pymatgen's ``Reaction``.

    Raises:
        ThermoError: the reaction cannot be balanced.
    """
    from pymatgen.analysis.reaction_calculator import Reaction, ReactionError
    from pymatgen.core import Composition

    r = list(reactants.values()) if isinstance(reactants, Mapping) else list(reactants)
    p = list(products.values()) if isinstance(products, Mapping) else list(products)
    try:
        rxn = Reaction([Composition(x.formula) for x in r], [Composition(x.formula) for x in p])
    except (ReactionError, ValueError) as exc:
        names = " + ".join(x.name for x in r) + " -> " + " + ".join(x.name for x in p)
        raise ThermoError(f"cannot balance {names}: {exc}") from None
    coeffs: dict[str, float] = {}
    phases: dict[str, Phase] = {}
    for x in r + p:
        c = float(rxn.get_coeff(Composition(x.formula)))
        if abs(c) < 1e-12:
            raise ThermoError(f"{x.name} takes no part in the balanced reaction {rxn}")
        coeffs[x.name] = c
        phases[x.name] = x
    for x in r:
        if coeffs[x.name] > 0:
            raise ThermoError(f"cannot balance with {x.name} as a reactant: {rxn}")
    return BalancedReaction(coeffs, phases)


def parse_equation(equation: str) -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
    """Split ``"2 BaCO3 + TiO2 -> Ba2TiO4 + 2 CO2"`` into (coefficient, formula) lists.

    Coefficients are optional; pymatgen re-balances anyway, so they are only checked.
    """
    for arrow in ("->", "=>", "="):
        if arrow in equation:
            left, right = equation.split(arrow, 1)
            break
    else:
        raise ThermoError(f"reaction {equation!r} has no arrow; write it like 'A + B -> C'")

    def terms(side: str) -> list[tuple[float, str]]:
        out = []
        for term in side.split("+"):
            parts = term.split()
            if not parts:
                raise ThermoError(f"empty term in reaction {equation!r}")
            if len(parts) == 2:
                try:
                    out.append((float(parts[0]), parts[1]))
                except ValueError:
                    raise ThermoError(f"bad coefficient {parts[0]!r} in {equation!r}") from None
            elif len(parts) == 1:
                out.append((1.0, parts[0]))
            else:
                raise ThermoError(f"cannot read term {term.strip()!r} in {equation!r}")
        return out

    return terms(left), terms(right)
