"""Bundled thermochemical tables: where every number about a phase comes from.

Five published tables ship on this machine and are read here, nowhere else:

* NIST-JANAF and FREED Gibbs energies of formation of compounds, dfG(T) every 100 K from
  300 K, vendored in ``data/thermo/`` from the reaction-network package (modified-BSD;
  licence and references in ``data/thermo/README.md`` and ``LICENSE``);
* the Shomate (NIST WebBook), NIST-JANAF and Perry's Table 2-151 heat-capacity fits of solids
  and gases packaged by ``chemicals`` (temperature-dependent Cp);
* pymatgen ``analysis/compatibility/exp_compounds.json.gz``: about 2,100 experimental
  standard enthalpies of formation of solids (eV per formula unit, Kubaschewski/NIST
  compilations as curated by the Materials Project);
* pymatgen ``core/data/nist_gas_gf.json``: NIST-JANAF Gibbs energies of formation of
  gases, eV per formula unit, tabulated every 100 K from 300 K to 2000 K;
* the CRC Handbook standard data as packaged by ``chemicals`` (``S0s``, ``Cps``,
  ``S0g``, ``Cpg`` in J/(mol K)), looked up by CAS number because a formula can land on a
  gas record.

Every value is returned as a :class:`Sourced` so its provenance travels with it.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

EV_TO_J_PER_MOL = 96485.33212  # J/mol per eV per formula unit
R_GAS = 8.314462618  # J/(mol K)
T_STANDARD = 298.15  # K


class MissingDataError(LookupError):
    """A thermochemical value the user asked for is in no bundled table."""


@dataclass(frozen=True)
class Sourced:
    """A number with its provenance.

    Attributes:
        value: the number, in the unit the field documents.
        source: where it comes from (table and key, or literature reference).
        estimate: True when the value is estimated rather than measured.
        method: how an estimate was made (empty for measured values).
        uncertainty: one standard uncertainty in the value's unit, where the source gives
            one (None: the source gives none).
    """

    value: float
    source: str
    estimate: bool = False
    method: str = ""
    uncertainty: float | None = None


def _pymatgen_file(package: str, name: str):
    return resources.files(package).joinpath(name)


@lru_cache(maxsize=1)
def _experimental_enthalpies() -> dict[str, tuple[float, float | None, str]]:
    path = _pymatgen_file("pymatgen.analysis.compatibility", "exp_compounds.json.gz")
    with gzip.open(str(path), "rt") as fh:
        rows = json.load(fh)
    out: dict[str, tuple[float, float | None, str]] = {}
    for row in rows:
        out.setdefault(row["formula"], (row["exp energy"], row.get("uncertainty"), row["mpid"]))
    return out


def formation_enthalpy(formula: str) -> Sourced:
    """Standard enthalpy of formation of a solid at 298 K, J/mol per formula unit.

    Raises:
        MissingDataError: the formula is not among pymatgen's experimental enthalpies.
    """
    from pymatgen.core import Composition

    table = _experimental_enthalpies()
    reduced = Composition(formula).reduced_formula
    key = formula if formula in table else reduced
    if key not in table:
        raise MissingDataError(
            f"no standard enthalpy of formation (dHf) for {formula!r} in pymatgen's "
            "experimental table; give it in a system data file with its source"
        )
    energy_ev, uncertainty_ev, mpid = table[key]
    return Sourced(
        energy_ev * EV_TO_J_PER_MOL,
        f"pymatgen exp_compounds.json.gz ({key}, {mpid})",
        uncertainty=(None if uncertainty_ev is None or math.isnan(uncertainty_ev)
                     else float(uncertainty_ev) * EV_TO_J_PER_MOL),
    )


@lru_cache(maxsize=1)
def _nist_gases() -> dict[str, dict[str, float]]:
    path = _pymatgen_file("pymatgen.core", "data/nist_gas_gf.json")
    return json.loads(path.read_text())


def gas_formula_key(formula: str) -> str | None:
    """The NIST table's key for a gas formula (its element order differs), or None."""
    from pymatgen.core import Composition

    target = Composition(formula)
    for key in _nist_gases():
        try:
            if Composition(key).almost_equals(target):
                return key
        except ValueError:
            continue
    return None


def gas_formation_gibbs_table(formula: str) -> tuple[tuple[float, ...], tuple[float, ...], str]:
    """NIST-JANAF Gibbs energy of formation of a gas on its table grid.

    Returns:
        (temperatures K, dfG J/mol per formula unit, source).

    Raises:
        MissingDataError: the gas is not in the NIST table.
    """
    key = gas_formula_key(formula)
    if key is None:
        raise MissingDataError(f"no NIST gas Gibbs energy table for {formula!r}")
    table = _nist_gases()[key]
    temps = sorted((float(t), v) for t, v in table.items() if float(t) >= T_STANDARD - 1)
    return (
        tuple(t for t, _ in temps),
        tuple(v * EV_TO_J_PER_MOL for _, v in temps),
        f"pymatgen nist_gas_gf.json ({key}, NIST-JANAF)",
    )


@lru_cache(maxsize=1)
def _crc_table():
    from chemicals import reaction

    reaction._load_reaction_data()
    return reaction.S0s_sources["CRC"]


def _standard_value(cas: str, column: str, label: str, formula: str) -> Sourced:
    """A CRC value by CAS, falling back to the NIST WebBook table that ``chemicals`` ships."""
    from chemicals import reaction

    table = _crc_table()
    if cas in table.index:
        value = table.at[cas, column]
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            chem = table.at[cas, "Chemical"]
            return Sourced(float(value), f"CRC Handbook via chemicals ({chem}, CAS {cas}, {column})")
    webbook = reaction.S0s_sources["WEBBOOK"] if column.startswith("S0") else None
    key = int(cas.replace("-", ""))  # the WebBook table is indexed by CAS as an integer
    if webbook is not None and key in webbook.index and column in webbook.columns:
        value = webbook.at[key, column]
        if not math.isnan(value):
            return Sourced(float(value), f"NIST WebBook via chemicals (CAS {cas}, {column})")
    raise MissingDataError(f"no {label} for {formula!r} (CAS {cas}) in the CRC or WebBook tables")


def standard_entropy(cas: str, formula: str, gas: bool = False) -> Sourced:
    """Standard molar entropy at 298 K, J/(mol K), of the solid (or gas) with this CAS."""
    return _standard_value(cas, "S0g" if gas else "S0s", "standard entropy S0", formula)


def heat_capacity(cas: str, formula: str, gas: bool = False) -> Sourced:
    """Molar heat capacity at 298 K, J/(mol K), of the solid (or gas) with this CAS."""
    return _standard_value(cas, "Cpg" if gas else "Cps", "heat capacity Cp", formula)


@lru_cache(maxsize=256)
def cas_for_formula(formula: str) -> str | None:
    """CAS number of a compound from its formula via ``chemicals``, or None if unknown."""
    from chemicals.identifiers import search_chemical

    try:
        return search_chemical(formula).CASs
    except (ValueError, KeyError):
        return None


# -- assessed Gibbs energy tables ---------------------------------------------------------

#: Assessed G(T) sources in order of precedence, with their vendored file.
ASSESSED_SOURCES: dict[str, str] = {
    "NIST-JANAF": "data/thermo/nist/compounds.json.gz",
    "FREED": "data/thermo/freed/compounds.json.gz",
}
_REFERENCES = {
    "NIST-JANAF": "NIST-JANAF Thermochemical Tables, 4th ed. (Chase 1998)",
    "FREED": "FREED database (Morris 2019, US Bureau of Mines data)",
}
_DERIVATION_POINTS = 3  # table points (300, 400, 500 K) fitted for dfH, dfS at 298.15 K


@dataclass(frozen=True)
class GibbsTable:
    """Standard Gibbs energy of formation of one phase on its table grid.

    Between table points dfG is linear in T (the grid is 100 K; dfG bends by
    dfCp/T, so this costs well under 0.1 kJ/mol). Beyond the table's ends it is continued
    along the end segment (constant dfH and dfS of that segment, the Ellingham form).

    Attributes:
        temperatures: table temperatures, K, increasing.
        values: dfG at those temperatures, J/mol per formula unit.
        source: table and key.
    """

    temperatures: tuple[float, ...]
    values: tuple[float, ...]
    source: str

    def __call__(self, T: np.ndarray) -> np.ndarray:
        """dfG(T), J/mol, at temperatures ``T`` (K, any shape)."""
        t, v = np.asarray(self.temperatures), np.asarray(self.values)
        g = np.interp(T, t, v)
        lo, hi = T < t[0], T > t[-1]
        if np.any(lo):
            g = np.where(lo, v[0] + (v[1] - v[0]) / (t[1] - t[0]) * (T - t[0]), g)
        if np.any(hi):
            g = np.where(hi, v[-1] + (v[-1] - v[-2]) / (t[-1] - t[-2]) * (T - t[-1]), g)
        return g

    @property
    def t_max(self) -> float:
        """Highest tabulated temperature, K (beyond it the end segment is extended)."""
        return self.temperatures[-1]

    def standard_values(self) -> tuple[float, float, float]:
        """dfH and dfS at 298.15 K and the mean dfCp from the first three table points.

        dfG = a + b T + c T ln T through the 300, 400 and 500 K points (a constant dfCp = -c);
        then dfH(298.15) = a - c 298.15 and dfS(298.15) = -(b + c + c ln 298.15).

        Returns:
            (dfH J/mol, dfS J/(mol K), dfCp J/(mol K)).
        """
        t = np.asarray(self.temperatures[:_DERIVATION_POINTS])
        v = np.asarray(self.values[:_DERIVATION_POINTS])
        a, b, c = np.linalg.solve(np.c_[np.ones_like(t), t, t * np.log(t)], v)
        return float(a - c * T_STANDARD), float(-(b + c + c * np.log(T_STANDARD))), float(-c)


@lru_cache(maxsize=2)
def _assessed_file(source: str) -> dict[str, tuple[str, dict[str, float]]]:
    """reduced formula -> (table key, {temperature: dfG eV}) of one vendored table."""
    from pymatgen.core import Composition

    path = resources.files("synthgap.envs.chemistry").joinpath(ASSESSED_SOURCES[source])
    with gzip.open(str(path), "rt") as fh:
        raw = json.load(fh)
    out = {}
    for key, table in raw.items():
        try:
            out.setdefault(Composition(key).reduced_formula, (key, table))
        except ValueError:  # D (deuterium) is no element to pymatgen
            continue
    return out


def assessed_gibbs_tables(formula: str) -> dict[str, GibbsTable]:
    """Every assessed table that has this compound, in order of precedence.

    Args:
        formula: a formula; multiples of the table's formula unit are scaled.

    Returns:
        source name -> :class:`GibbsTable` (J/mol per formula unit of ``formula``); empty if
        no assessed table has the compound.
    """
    from pymatgen.core import Composition

    comp = Composition(formula)
    reduced, factor = comp.get_reduced_formula_and_factor()
    out = {}
    for source in ASSESSED_SOURCES:
        hit = _assessed_file(source).get(reduced)
        if hit is None:
            continue
        key, table = hit
        factor_key = Composition(key).get_reduced_formula_and_factor()[1]
        scale = factor / factor_key * EV_TO_J_PER_MOL
        rows = sorted((float(t), g) for t, g in table.items())
        out[source] = GibbsTable(
            tuple(t for t, _ in rows),
            tuple(g * scale for _, g in rows),
            f"{source} G(T) table ({key}; {_REFERENCES[source]}; vendored from reaction-network 8.3.0)",
        )
    return out


def assessed_gibbs_table(formula: str) -> GibbsTable | None:
    """The first assessed table (NIST-JANAF, then FREED) that has the compound, or None."""
    tables = assessed_gibbs_tables(formula)
    return next(iter(tables.values()), None)


# -- temperature-dependent heat capacities -----------------------------------------------

CP_GRID = np.arange(200.0, 6000.0 + 1.0, 1.0)  # K: grid on which Cp(T) is tabulated and integrated


@dataclass(frozen=True)
class HeatCapacityFit:
    """A temperature-dependent heat capacity Cp(T) of one phase.

    Cp is evaluated on :data:`CP_GRID` from the fit; outside the fit's range
    [t_min, t_max] it is held at the end value (stated in ``method``).

    Attributes:
        values: Cp on :data:`CP_GRID`, J/(mol K).
        source: the fit and its CAS number.
        t_min, t_max: range of the fit, K.
    """

    values: tuple[float, ...]
    source: str
    t_min: float
    t_max: float

    @property
    def method(self) -> str:
        return f"Cp(T) fit valid {self.t_min:.0f}-{self.t_max:.0f} K, held constant outside"

    def cp(self, T: float | np.ndarray) -> np.ndarray:
        """Cp(T), J/(mol K)."""
        return np.interp(T, CP_GRID, np.asarray(self.values))


def _piecewise_values(model) -> tuple[np.ndarray, float, float]:
    lo, hi = float(model.Tmin), float(model.Tmax)
    clipped = np.clip(CP_GRID, lo, hi)
    return np.array([model.force_calculate(float(t)) for t in clipped]), lo, hi


@lru_cache(maxsize=256)
def heat_capacity_fit(cas: str, formula: str, gas: bool = False) -> HeatCapacityFit | None:
    """Cp(T) of the solid (or gas) with this CAS from ``chemicals``, or None if no fit.

    Order: Shomate fits of the NIST WebBook, the NIST-JANAF tabulated Cp, Perry's Table
    2-151 (a + bT + c/T^2 + dT^2 in cal/(mol K), only if it covers 298 K).
    """
    from chemicals import heat_capacity as hc

    hc._load_Cp_data()
    shomate = hc.WebBook_Shomate_gases if gas else hc.WebBook_Shomate_solids
    if cas in shomate:
        values, lo, hi = _piecewise_values(shomate[cas])
        return HeatCapacityFit(tuple(values), f"NIST WebBook Shomate fit via chemicals ({formula}, CAS {cas})",
                               lo, hi)
    janaf = hc.Cp_dict_JANAF_gas if gas else hc.Cp_dict_JANAF_solid
    if cas in janaf:
        t, cp = (np.asarray(x, dtype=float) for x in janaf[cas])
        keep = t > 0
        values = np.interp(CP_GRID, t[keep], cp[keep])
        return HeatCapacityFit(tuple(values), f"NIST-JANAF Cp table via chemicals ({formula}, CAS {cas})",
                               float(t[keep][0]), float(t[keep][-1]))
    perry = hc.Cp_dict_PerryI.get(cas, {}).get("g" if gas else "c")
    if perry and perry["Tmin"] <= T_STANDARD + 1.0:
        lo, hi = float(perry["Tmin"]), float(perry["Tmax"])
        t = np.clip(CP_GRID, lo, hi)
        values = hc.Perry_151(t, perry["Const"], perry["Lin"], perry["Quadinv"], perry["Quad"])
        return HeatCapacityFit(tuple(values), f"Perry's Table 2-151 via chemicals ({formula}, CAS {cas})", lo, hi)
    return None


def assessed_formulas() -> frozenset[str]:
    """Reduced formulas of every compound some assessed G(T) table (NIST-JANAF, FREED) has."""
    return frozenset().union(*(_assessed_file(source) for source in ASSESSED_SOURCES))


# -- melting points ------------------------------------------------------------------------

@lru_cache(maxsize=256)
def melting_point(formula: str, cas: str | None = None) -> Sourced:
    """Melting point, K, from the CRC Handbook's inorganic table as packaged by ``chemicals``.

    The record is the one of ``cas`` if given (a polymorph: rutile, cristobalite), else the
    CAS number a formula search finds. Only the CRC record is read: the other sources that
    ``chemicals`` merges give 437 K for silica and 838 K for Fe2O3. A CRC "melting point" is
    what the handbook lists: for a carbonate it may be a decomposition (calcite, 1073 K).

    Raises:
        MissingDataError: the CRC table has no melting point for the compound.
    """
    from chemicals import miscdata

    miscdata._load_miscdata()
    table = miscdata.CRC_inorganic_data
    key = cas or cas_for_formula(formula)
    if key is None or key not in table.index or math.isnan(float(table.at[key, "Tm"])):
        raise MissingDataError(f"no melting point for {formula!r}" + (f" (CAS {key})" if key else "")
                               + " in the CRC Handbook's inorganic table (via chemicals)")
    return Sourced(float(table.at[key, "Tm"]),
                   f"CRC Handbook inorganic table via chemicals ({table.at[key, 'Chemical']}, CAS {key}, Tm)")
