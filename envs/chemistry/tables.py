"""Bundled thermochemical tables: where every number about a phase comes from.

Three published tables ship on this machine and are read here, nowhere else:

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
    """

    value: float
    source: str
    estimate: bool = False
    method: str = ""


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
    energy_ev, _, mpid = table[key]
    return Sourced(
        energy_ev * EV_TO_J_PER_MOL,
        f"pymatgen exp_compounds.json.gz ({key}, {mpid})",
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
