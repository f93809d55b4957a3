"""Assessed G(T): crossovers from the vendored tables, and the audit's thermodynamic findings.

Each crossover is checked twice: against the same table read here independently (raw JSON,
linear in T, NIST-JANAF before FREED, root by brentq) within 1 K, and against a literature
value within 50 K.
"""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import brentq

from synthgap.envs.chemistry import tables
from synthgap.envs.chemistry.catalogue import CatalogueError, load_system
from synthgap.envs.chemistry.hull import hull_at
from synthgap.envs.chemistry.tables import EV_TO_J_PER_MOL, R_GAS, MissingDataError, Sourced
from synthgap.envs.chemistry.thermo import Phase, balance, phase_from_tables

AIR_O2 = 0.21  # atm


def _raw(source_dir: str) -> dict:
    path = resources.files("synthgap.envs.chemistry").joinpath(f"data/thermo/{source_dir}/compounds.json.gz")
    with gzip.open(str(path), "rt") as fh:
        return json.load(fh)


RAW = {"NIST-JANAF": _raw("nist"), "FREED": _raw("freed")}


def raw_gibbs(formula: str, T: float) -> float:
    """dfG(T), J/mol, straight from the first raw table that has the formula (O2: 0)."""
    if formula == "O2":
        return 0.0
    for table in RAW.values():
        if formula in table:
            t = np.array(sorted(float(k) for k in table[formula]))
            g = np.array([table[formula][f"{int(x)}"] for x in t]) * EV_TO_J_PER_MOL
            if T > t[-1]:
                return float(g[-1] + (g[-1] - g[-2]) / (t[-1] - t[-2]) * (T - t[-1]))
            return float(np.interp(T, t, g))
    raise KeyError(formula)


def raw_crossover(terms: list[tuple[float, str]], pressures: dict[str, float]) -> float:
    def dg(T):
        return sum(c * (raw_gibbs(f, T) + R_GAS * T * np.log(pressures.get(f, 1.0))) for c, f in terms)

    grid = np.arange(300.0, 2000.0, 10.0)
    values = [dg(T) for T in grid]
    i = next(i for i in range(len(grid) - 1) if values[i] * values[i + 1] < 0)
    return brentq(dg, grid[i], grid[i + 1])


CROSSOVERS = [
    # (terms, pressures atm, literature K, where the literature value comes from)
    ([(-1, "CaCO3"), (1, "CaO"), (1, "CO2")], {"CO2": 1.0}, 1170.0,
     "calcite at 1 atm CO2, 897 degC (Baker 1962, J. Chem. Soc. 464)"),
    ([(-1, "MgCO3"), (1, "MgO"), (1, "CO2")], {"CO2": 1.0}, 680.0,
     "FREED's own MgCO3 table (an assessment independent of NIST-JANAF's)"),
    ([(-1, "SrCO3"), (1, "SrO"), (1, "CO2")], {"CO2": 1.0}, 1452.0, "FREED, all phases (issue 14)"),
    ([(-4, "CuO"), (2, "Cu2O"), (1, "O2")], {"O2": AIR_O2}, 1300.0,
     "CuO -> Cu2O in air at about 1027-1030 degC (Cu-O phase diagram)"),
    ([(-1, "BaCO3"), (-1, "TiO2"), (1, "BaTiO3"), (1, "CO2")], {"CO2": 1.0}, 644.0,
     "FREED, all phases (no independent measurement found)"),
    ([(-1, "SrCO3"), (-1, "TiO2"), (1, "SrTiO3"), (1, "CO2")], {"CO2": 1.0}, 559.0,
     "FREED, all phases (no independent measurement found)"),
    ([(-6, "Mn2O3"), (4, "Mn3O4"), (1, "O2")], {"O2": AIR_O2}, 1157.0,
     "Hahn & Muan 1960, Am. J. Sci. 258: log pO2 = 8.05 - 10100/T"),
]
IDS = ["CaCO3", "MgCO3", "SrCO3", "CuO", "BaCO3+TiO2", "SrCO3+TiO2", "Mn2O3"]
#: rows whose only value is the table under test: regression values, not literature
SAME_TABLE = "FREED, all phases"


def _crossover(terms, pressures):
    reactants = [phase_from_tables(f) for c, f in terms if c < 0]
    products = [phase_from_tables(f) for c, f in terms if c > 0]
    (t_cross, *_) = balance(reactants, products).crossover_temperatures(pressures)
    return t_cross


@pytest.mark.parametrize("terms, pressures, literature, cite", CROSSOVERS, ids=IDS)
def test_crossover_is_the_chosen_tables_value(terms, pressures, literature, cite):
    assert _crossover(terms, pressures) == pytest.approx(raw_crossover(terms, pressures), abs=1.0)


@pytest.mark.parametrize(
    "terms, pressures, literature, cite",
    [pytest.param(*c, marks=pytest.mark.xfail(
        strict=True, reason="FREED puts 6 Mn2O3 -> 4 Mn3O4 + O2 in air at 965 K, 190 K below the measured "
                            "equilibrium; see README 'Assessed G(T): where sources disagree'"))
     if i == "Mn2O3" else c for c, i in zip(CROSSOVERS, IDS, strict=True) if not c[3].startswith(SAME_TABLE)],
    ids=[i for c, i in zip(CROSSOVERS, IDS, strict=True) if not c[3].startswith(SAME_TABLE)],
)
def test_crossover_agrees_with_literature_within_50_K(terms, pressures, literature, cite):
    assert abs(_crossover(terms, pressures) - literature) < 50.0, cite


# -- the audit's findings (issue 14): each failed on the constant-Cp code ------------------


def test_srco3_decomposes_near_1452_K_not_1370_K():
    t = _crossover([(-1, "SrCO3"), (1, "SrO"), (1, "CO2")], {"CO2": 1.0})
    assert abs(t - 1452.0) < 10.0


def test_mn2o3_gives_mn3o4_in_air_below_1250_K_in_the_limn2o4_system():
    system = load_system("LiMn2O4")
    p = system.phases
    (t,) = balance([p["Mn2O3"]], [p["Mn3O4"], p["O2"]]).crossover_temperatures({"O2": AIR_O2})
    assert t < 1250.0  # was 1542 K with Cp(298) held constant
    assert p["Mn2O3"].gibbs_route() == p["Mn3O4"].gibbs_route() == "table"


def test_mgal2o4_from_oxides_at_1500_K_is_about_minus_38_to_45_kJ():
    p = load_system("MgAl2O4").phases
    dg = float(balance([p["MgO"], p["Al2O3"]], [p["MgAl2O4"]]).gibbs(1500.0)) / 1e3
    assert -45.0 <= dg <= -38.0  # was -65 with the spinel's formation Cp set to 0


@pytest.mark.parametrize(
    "system, phase, dHf, tol",
    [("BaTiO3", "BaTiO3", -1659.8, 2.0),  # was -1647.7 (pymatgen)
     ("MgAl2O4", "Al2O3", -1675.7, 2.0),  # JANAF; was -1668.1
     ("CaSiO3", "Ca2SiO4", -2316.6, 3.0)],  # gamma (stable at 298 K); was -2328.4
)
def test_standard_enthalpies_are_the_tables(system, phase, dHf, tol):
    assert load_system(system).phases[phase].enthalpy.value / 1e3 == pytest.approx(dHf, abs=tol)


@pytest.mark.parametrize("system, phase, S0, tol", [("BaTiO3", "BaTiO3", 107.9, 2.0),  # was 122.7
                                                     ("CaSiO3", "Ca3Si2O7", 210.0, 3.0)])  # was 197.3
def test_standard_entropies_are_the_tables(system, phase, S0, tol):
    assert load_system(system).phases[phase].entropy.value == pytest.approx(S0, abs=tol)


def test_pymatgen_enthalpy_uncertainty_is_kept():
    h = tables.formation_enthalpy("BaTiO3")
    assert h.uncertainty == pytest.approx(0.12126 * EV_TO_J_PER_MOL, rel=1e-3)
    assert "+/-" in phase_from_tables("Mn2O3", assessed=None).sources()["enthalpy"]


def test_rankinite_is_on_the_hull_at_1273_K():
    assert hull_at(load_system("CaSiO3"), 1273.0).e_above_hull["Ca3Si2O7"] < 1e-9


def test_a_solid_without_heat_capacity_is_refused_not_given_zero():
    bare = Phase("X", "MgAl2O4", enthalpy=Sourced(-2.3e6, "test"), entropy=Sourced(80.0, "test"))
    with pytest.raises(MissingDataError, match="no heat capacity"):
        bare.formation_gibbs(1500.0)


def test_system_file_phase_without_heat_capacity_is_refused(tmp_path):
    src = load_system("LiMn2O4").source
    old = "    heat_capacity: {additivity: {Li2O: 0.5, Mn2O3: 0.5, MnO2: 1}}\n"
    assert old in Path(src).read_text()
    text = Path(src).read_text().replace(old, "")
    bad = tmp_path / "nocp.yaml"
    bad.write_text(text)
    with pytest.raises(CatalogueError, match="LiMn2O4.heat_capacity: no heat capacity"):
        load_system(str(bad))


def test_tabled_phase_with_typed_values_is_refused(tmp_path):
    src = load_system("BaTiO3").source
    text = Path(src).read_text().replace("  BaTiO3: {}", "  BaTiO3: {entropy: {value: 122.7, source: additivity}}")
    bad = tmp_path / "typed.yaml"
    bad.write_text(text)
    with pytest.raises(CatalogueError, match="assessed G\\(T\\) table"):
        load_system(str(bad))


def test_cp_of_an_estimate_follows_its_parts_cp_of_T():
    """Neumann-Kopp: dfG of the estimate minus dfH - T dfS is the sum of its parts' Cp terms."""
    p = load_system("LiMn2O4").phases
    spinel = p["LiMn2O4"]
    T = np.array([500.0, 1000.0, 1500.0])
    thermal = spinel.formation_gibbs(T) - (spinel.enthalpy.value - T * spinel.formation_entropy())
    expected = 0.5 * p["Li2O"].thermal_gibbs(T) + 0.5 * p["Mn2O3"].thermal_gibbs(T) + p["MnO2"].thermal_gibbs(T)
    np.testing.assert_allclose(thermal, expected, rtol=1e-12)
    assert np.all(np.abs(thermal) > 1.0)  # not the Ellingham zero


def test_cp_fit_is_integrated_not_held():
    """Route 2: Cp(T) is integrated, so dfG differs from holding Cp(298) constant."""
    mn2o3 = phase_from_tables("Mn2O3", assessed=None)
    assert mn2o3.gibbs_route() == "Cp(T) fit"
    T = 800.0
    held = mn2o3.enthalpy.value - T * mn2o3.formation_entropy() + (
        mn2o3.formation_heat_capacity() * (T - 298.15 - T * np.log(T / 298.15)))
    assert abs(float(mn2o3.formation_gibbs(T) - held)) > 100.0  # J/mol: Cp(T) is not Cp(298)


def test_melting_and_transitions_come_with_the_tables():
    """Li2CO3 melts at 996 K: the slope of dfG(T) (minus dfS) jumps by about dS_fus."""
    t = phase_from_tables("Li2CO3").gibbs_table
    s = -np.diff(t.values) / np.diff(t.temperatures)  # dfS on each 100 K segment
    i = t.temperatures.index(900.0)
    assert s[i + 1] - s[i] > 30.0  # J/(mol K): fusion (Janz: about 45) on top of dfCp/T
    assert "NIST-JANAF" in t.source


@pytest.mark.parametrize("system, phase, per_atom", [("BaTiO3", "Ba3Ti2O7", 0.025)])
def test_a_phase_placed_below_the_hull_carries_its_stated_uncertainty(system, phase, per_atom):
    """The audit: Ba3Ti2O7's 4 meV/atom below the hull is smaller than BaTiO3's own enthalpy
    uncertainty; a placement now says its uncertainty, and the hull command shows it."""
    from pymatgen.core import Composition

    p = load_system(system).phases[phase]
    atoms = Composition(p.formula).num_atoms
    assert p.enthalpy.estimate and p.enthalpy.uncertainty / EV_TO_J_PER_MOL / atoms == pytest.approx(per_atom)
    assert "assumption" in p.enthalpy.source


def test_the_ba3ti2o7_placement_is_inside_batio3s_own_enthalpy_uncertainty():
    """The 25 meV/atom of the assumption, recomputed from the data it names: pymatgen's
    uncertainty of BaTiO3's enthalpy, and the spread between pymatgen and FREED."""
    mp = tables.formation_enthalpy("BaTiO3")  # pymatgen's experimental value and its uncertainty
    freed = load_system("BaTiO3").phases["BaTiO3"].enthalpy  # the assessed table's
    per_atom = EV_TO_J_PER_MOL * 5  # J/mol of one eV/atom over BaTiO3's 5 atoms
    assert mp.uncertainty / per_atom == pytest.approx(0.025, abs=0.002)
    assert abs(mp.value - freed.value) / per_atom == pytest.approx(0.025, abs=0.002)
    placed = load_system("BaTiO3").phases["Ba3Ti2O7"].enthalpy
    assert "4 meV/atom below" in placed.method and 0.004 < placed.uncertainty / (EV_TO_J_PER_MOL * 12)


def test_a_user_system_placing_a_phase_below_the_hull_must_state_its_uncertainty(tmp_path):
    text = (resources.files("synthgap.envs.chemistry").joinpath("data/systems/BaTiO3.yaml")).read_text()
    path = tmp_path / "no_sigma.yaml"
    path.write_text(text.replace("      uncertainty_per_atom: 0.025\n", ""))
    with pytest.raises(CatalogueError, match="uncertainty_per_atom.*needs its uncertainty"):
        load_system(str(path))


def test_the_hull_command_reports_every_enthalpy_estimate(capsys, tmp_path):
    from synthgap.experiments.cli import main

    assert main(["hull", "BaTiO3", "--out", str(tmp_path / "hull.png"), "--json"]) == 0
    est = json.loads(capsys.readouterr().out)["estimates"]
    assert set(est) == {"Ba3Ti2O7"} and est["Ba3Ti2O7"]["uncertainty_eV_per_atom"] == pytest.approx(0.025)
