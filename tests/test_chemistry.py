"""Physical facts from the bundled data, checked through synthgap's chemistry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synthgap.envs.chemistry import catalogue, hull
from synthgap.envs.chemistry.catalogue import CatalogueError, load_system
from synthgap.envs.chemistry.firing import fire, network_for
from synthgap.envs.chemistry.recipe import Recipe, RecipeError, random_recipes
from synthgap.envs.chemistry.tables import EV_TO_J_PER_MOL, MissingDataError
from synthgap.envs.chemistry.thermo import ThermoError, balance, phase_from_tables

SYSTEMS = catalogue.bundled_system_names()


def test_at_least_four_systems_and_the_unobtainium_is_only_a_hypothetical_phase():
    """Li4Mn5O12 was an unobtainium by decree; it is a known spinel (issue 14), so only a
    predicted phase nobody has made (Ba3Ti2O7) is one."""
    assert len(SYSTEMS) >= 4
    unob = [(s, t.phase) for s in SYSTEMS for t in load_system(s).targets.values() if t.unobtainium]
    assert unob
    for s, phase in unob:
        assert load_system(s).phases[phase].hypothetical, phase


def test_calcite_decomposition_changes_sign_near_1170_K():
    rxn = balance([phase_from_tables("CaCO3")], [phase_from_tables("CaO"), phase_from_tables("CO2")])
    (t_cross,) = rxn.crossover_temperatures({"CO2": 1.0})
    assert 1050 < t_cross < 1250
    assert rxn.gibbs(1000.0, {"CO2": 1.0}) > 0 > rxn.gibbs(1300.0, {"CO2": 1.0})
    # less CO2 in the gas: decomposition is easier (Le Chatelier)
    (t_air,) = rxn.crossover_temperatures({"CO2": 4e-4})
    assert t_air < t_cross - 200


def test_gas_chemical_potential_follows_RT_ln_p():
    co2 = phase_from_tables("CO2")
    T = 1200.0
    diff = co2.chemical_potential(T, 1e-3) - co2.chemical_potential(T, 1.0)
    assert diff == pytest.approx(8.314462618 * T * np.log(1e-3))


def test_missing_data_names_the_value():
    with pytest.raises(MissingDataError, match="enthalpy"):
        phase_from_tables("LiMn2O4")


def test_unbalanceable_reaction_is_refused():
    with pytest.raises(ThermoError, match="cannot balance"):
        balance([catalogue.find_phase("CaCO3")], [catalogue.find_phase("SiO2")])


@pytest.mark.parametrize("name", SYSTEMS)
@pytest.mark.parametrize("T", [0.0, 1273.0])
def test_hull_agrees_with_pymatgen_on_the_same_entries(name, T):
    """Our hull at T against PhaseDiagram built here from the raw G(T) values."""
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    system = load_system(name)
    view = hull.hull_at(system, T)
    entries = []
    for p in system.phases.values():
        if T == 0.0:
            if p.is_gas:
                continue  # the 0 K view is the solids' enthalpies
            g = 0.0 if p.is_element else p.enthalpy.value
        else:
            pressure = hull.DEFAULT_PRESSURES.get(p.name, 1.0)
            g = float(p.chemical_potential(T, pressure))
        entries.append(PDEntry(Composition(p.formula), g / EV_TO_J_PER_MOL, name=p.name))
    for el in Composition("".join(system.elements)).elements:
        entries.append(PDEntry(Composition(str(el)), 0.0, name=str(el)))
    pd = PhaseDiagram(entries)
    for e in entries:
        if e.name in view.e_above_hull:
            assert view.e_above_hull[e.name] == pytest.approx(pd.get_e_above_hull(e), abs=1e-9)


def test_unobtainium_on_0K_hull_and_fails_at_synthesis_conditions():
    rng = np.random.default_rng(0)
    for name in SYSTEMS:
        system = load_system(name)
        for t in system.targets.values():
            if not t.unobtainium:
                continue
            assert hull.hull_at(system, 0.0).e_above_hull[t.phase] < 1e-9
            assert hull.hull_at(system, 1273.0).e_above_hull[t.phase] > 0.005
            batch = random_recipes(system, 5000, rng, target=t.phase)
            fired = fire(system, batch)
            assert fired.target_fraction.max() < 0.05, (name, t.phase)


def test_0K_view_and_finite_T_view_differ_in_both_directions():
    """Phases stable at 0 K and unstable at 1673 K exist (carbonates, unobtainium), and the
    reverse (alite, entropy-stabilised)."""
    stable0_unstableT, reverse = [], []
    for name in SYSTEMS:
        system = load_system(name)
        h0, hT = hull.hull_at(system, 0.0), hull.hull_at(system, 1673.0)
        for p in h0.e_above_hull:
            if h0.e_above_hull[p] < 1e-9 and hT.e_above_hull[p] > 1e-3:
                stable0_unstableT.append(p)
            if h0.e_above_hull[p] > 1e-3 and hT.e_above_hull[p] < 1e-9:
                reverse.append(p)
    assert "CaCO3" in stable0_unstableT and "Ba3Ti2O7" in stable0_unstableT
    assert reverse == ["Ca3SiO5"]


@pytest.mark.parametrize("name", SYSTEMS)
def test_element_balance_through_every_firing(name):
    system = load_system(name)
    net = network_for(system)
    batch = random_recipes(system, 2000, np.random.default_rng(1))
    fired = fire(system, batch)
    k = fired.kinetic
    before = net.element_totals(fired.initial, np.zeros_like(k.gas_released), np.zeros_like(k.volatilized))
    after = net.element_totals(k.amounts, k.gas_released, k.volatilized)
    np.testing.assert_allclose(after, before, atol=1e-10)
    assert np.all(k.amounts >= 0)


TRAPS = {
    # system: (target, trap, profile where the trap dominates, profile where the target does)
    "BaTiO3": ("BaTiO3", "Ba2TiO4", dict(dwell_temperature=1173, dwell_time=2, ramp_rate=2),
               dict(dwell_temperature=1473, dwell_time=4, ramp_rate=10)),
    "CaSiO3": ("CaSiO3", "Ca2SiO4", dict(dwell_temperature=1173, dwell_time=4, ramp_rate=5),
               dict(dwell_temperature=1573, dwell_time=6, ramp_rate=10, milling_time=4)),
}


@pytest.mark.parametrize("name", sorted(TRAPS))
def test_every_trap_has_a_trap_profile_and_a_target_profile(name):
    system = load_system(name)
    target, trap, trap_profile, good_profile = TRAPS[name]
    pre = system.targets[target].precursor_sets[0]
    a = fire(system, Recipe(target, pre, **trap_profile))
    b = fire(system, Recipe(target, pre, **good_profile))
    i_trap, i_target = a.phases.index(trap), a.phases.index(target)
    assert a.phase_fractions[0, i_trap] > 0.5 > a.phase_fractions[0, i_target]
    assert b.phase_fractions[0, i_target] > 0.9


def test_a_lithium_excess_the_vapour_does_not_take_ends_as_li2mno3():
    """Li2O evaporates only while free; beside manganese oxides it is taken up (spinel,
    Li2MnO3) first, so a 15 % excess mostly stays, as Li2MnO3, and costs target fraction."""
    system = load_system("LiMn2O4")
    base = dict(dwell_temperature=1273, dwell_time=10, ramp_rate=2)
    lean = fire(system, Recipe("LiMn2O4", ("Li2CO3", "MnO2"), **base))
    rich = fire(system, Recipe("LiMn2O4", ("Li2CO3", "MnO2"), excess=0.15, **base))
    assert 0 < lean.kinetic.volatilized.sum() < 0.01  # mol Li2O per mol of spinel intended
    i = rich.phases.index("Li2MnO3")
    assert rich.phase_fractions[0, i] > 0.05 > lean.phase_fractions[0, i]
    assert rich.target_fraction[0] < lean.target_fraction[0] - 0.03


def test_performance_follows_phenotype_not_formula():
    """One formula, three firings: under-fired (impure, porous) is far worse than dense; a
    coarse-grained dense one sits on the plateau below the optimum, not near zero."""
    system = load_system("BaTiO3")
    pre = ("BaCO3", "TiO2")
    under = fire(system, Recipe("BaTiO3", pre, dwell_temperature=1373, dwell_time=4, ramp_rate=10))
    good = fire(system, Recipe("BaTiO3", pre, dwell_temperature=1573, dwell_time=1, ramp_rate=10))
    coarse = fire(system, Recipe("BaTiO3", pre, dwell_temperature=1773, dwell_time=24, ramp_rate=10))
    assert under.target_fraction[0] < 0.9 and under.density[0] < good.density[0] < coarse.density[0]
    assert coarse.target_fraction[0] > 0.99 and coarse.grain_size[0] > 10 * good.grain_size[0]
    assert good.performance[0] > 10 * under.performance[0]
    assert good.performance[0] > coarse.performance[0] > 0.5 * good.performance[0]


def test_batched_firing_equals_one_at_a_time():
    system = load_system("CaSiO3")
    batch = random_recipes(system, 50, np.random.default_rng(3))
    together = fire(system, batch)
    for i in range(0, 50, 7):
        alone = fire(system, batch.take(slice(i, i + 1)))
        np.testing.assert_allclose(alone.amounts[0], together.amounts[i], rtol=1e-12)


def test_bad_recipes_are_rejected_with_the_field_named():
    system = load_system("BaTiO3")
    with pytest.raises(RecipeError, match="dwell_temperature"):
        fire(system, Recipe("BaTiO3", ("BaCO3", "TiO2"), dwell_temperature=5000))
    with pytest.raises(RecipeError, match="unknown precursor 'Unobtainium'"):
        fire(system, Recipe("BaTiO3", ("Unobtainium", "TiO2")))
    with pytest.raises(RecipeError, match="not a target"):
        fire(system, Recipe("TiO2", ("BaCO3", "TiO2")))
    with pytest.raises(RecipeError, match="ramp_rate"):
        fire(system, Recipe("BaTiO3", ("BaCO3", "TiO2"), ramp_rate=float("nan")))


def test_user_system_file_loads_and_malformed_file_names_field(tmp_path):
    src = load_system("MgAl2O4").source
    good = tmp_path / "spinel.yaml"
    good.write_text(Path(src).read_text().replace("system: MgAl2O4", "system: MySpinel"))
    assert load_system(str(good)).name == "MySpinel"

    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(src).read_text().replace('"MgO + Al2O3 -> MgAl2O4"', '"MgO + Al2O3 -> MgAl2O4 + MgO"'))
    with pytest.raises(CatalogueError) as info:
        load_system(str(bad))
    assert str(bad) in str(info.value) and "reactions[1].equation" in str(info.value)

    missing = tmp_path / "nofield.yaml"
    missing.write_text(Path(src).read_text().replace("grain_growth:", "grain_growthh:"))
    with pytest.raises(CatalogueError, match="grain_growth: is required"):
        load_system(str(missing))

    with pytest.raises(CatalogueError, match="no such file"):
        load_system(str(tmp_path / "absent.yaml"))


@pytest.mark.parametrize("steps", [None, (23, 25, 15)])
def test_programme_kernel_equals_the_explicit_programme_trace(steps, monkeypatch):
    """The fused fast path and the trace path integrate the same steps, in the same order:
    the reactions' order alternates with the firing's step count, so with odd segment
    lengths a dwell begins on an odd step in both."""
    from synthgap.envs.chemistry import firing, kinetics, programme_trace

    if steps is not None:
        for module in (firing, kinetics):
            for name, value in zip(("RAMP_STEPS", "DWELL_STEPS", "COOL_STEPS"), steps, strict=True):
                monkeypatch.setattr(module, name, value)
    system = load_system("LiMn2O4")
    batch = random_recipes(system, 300, np.random.default_rng(7))
    fast = fire(system, batch)
    traced = fire(system, batch, trace=programme_trace(batch))
    np.testing.assert_allclose(fast.amounts, traced.amounts, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(fast.grain_size, traced.grain_size, rtol=1e-10)
    np.testing.assert_allclose(fast.kinetic.volatilized, traced.kinetic.volatilized, rtol=1e-10, atol=1e-14)
