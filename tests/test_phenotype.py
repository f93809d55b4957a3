"""The phenotype: sintering (density from the thermal history) and the mixing rules.

Every expected value is computed from the models and the system files' own numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from synthgap.agents.arrows_models import ybco_system
from synthgap.envs.chemistry import programme_trace
from synthgap.envs.chemistry.catalogue import CatalogueError, load_system
from synthgap.envs.chemistry.firing import fire
from synthgap.envs.chemistry.incremental import IncrementalFiring
from synthgap.envs.chemistry.phenotype import performance
from synthgap.envs.chemistry.property_rules import RULES
from synthgap.envs.chemistry.recipe import Recipe, random_recipes
from synthgap.envs.chemistry.stoichiometry import precursor_amounts


def sample(system, fractions: dict[str, float], grain: float, density: float, target: str | None = None):
    """The property of one made-up sample: weight fractions by phase, grain um, relative density."""
    target = target or next(iter(system.targets))
    w = np.array([[fractions.get(s, 0.0) for s in system.solids]])
    k = list(system.targets).index(target)
    return float(performance(system, np.array([k]), w, np.array([fractions.get(target, 0.0)]),
                             np.array([grain]), np.array([density]))[0])


def test_density_rises_with_temperature_and_time_and_saturates_below_one():
    system = load_system("BaTiO3")
    temps, hours = [1273, 1373, 1473, 1573, 1673, 1773], [0.5, 2, 8, 48]
    recipes = [Recipe("BaTiO3", ("BaCO3", "TiO2"), dwell_temperature=T, dwell_time=h) for T in temps for h in hours]
    rho = fire(system, recipes).density.reshape(len(temps), len(hours))
    curve = system.sintering
    assert np.all(np.diff(rho, axis=0) > 0) and np.all(np.diff(rho, axis=1) > 0)
    assert rho.min() >= curve.green_density and rho.max() < curve.max_density < 1
    assert rho[0, 0] < curve.green_density + 0.01  # 1273 K for 30 min: hardly sintered
    assert rho[-1, -1] > curve.max_density - 0.005  # saturated
    gains = np.diff(rho[-1])  # at the top temperature each longer dwell gains less
    assert np.all(np.diff(gains) < 0)


def test_sintering_work_is_one_definition_for_programmes_traces_and_intervals():
    system = load_system("MgAl2O4")
    batch = random_recipes(system, 200, np.random.default_rng(4))
    fast, traced = fire(system, batch), fire(system, batch, trace=programme_trace(batch))
    np.testing.assert_allclose(fast.density, traced.density, rtol=1e-12)
    recipe = batch.recipe(system, 0)
    trace = programme_trace(batch.take(slice(0, 1)))
    live = IncrementalFiring(system, [recipe], fast.initial[:1], recipe.atmosphere)
    for half in np.array_split(np.arange(trace.dt.shape[1]), 2):
        live.react(trace.temperature[0, half], trace.dt[0, half])
    assert live.outcome().density[0] == pytest.approx(fast.density[0], rel=1e-12)


def test_a_porous_sample_is_dimmer_than_a_dense_one():
    system = load_system("MgAl2O4")
    theoretical = system.targets["MgAl2O4"].performance.theoretical
    pure = {"MgAl2O4": 1.0}
    assert sample(system, pure, 0.5, 0.6) < 1e-6 * theoretical  # a calcined powder compact: opaque
    assert sample(system, pure, 0.5, 0.9999) > 0.95 * theoretical
    dense_fired = [sample(system, pure, 1.0, rho) for rho in (0.95, 0.99, 0.995, 0.998)]
    assert np.all(np.diff(dense_fired) > 0)
    # a second phase scatters too
    assert sample(system, {"MgAl2O4": 0.95, "Al2O3": 0.05}, 1.0, 0.998) < dense_fired[-1]
    # fired: a low, short firing leaves a porous, dim body; the furnace's best a bright one
    low, high = fire(system, [Recipe("MgAl2O4", ("MgO", "Al2O3"), dwell_temperature=T, dwell_time=h, milling_time=4)
                              for T, h in ((1473, 1), (1773, 24))]).performance
    assert low < 0.01 < 20 < high


def test_batio3_permittivity_keeps_a_coarse_grain_plateau():
    system = load_system("BaTiO3")
    rule = system.targets["BaTiO3"].performance.rule
    dense = system.sintering.max_density
    pure = {"BaTiO3": 1.0}
    coarse = sample(system, pure, 50.0, dense)
    peak = sample(system, pure, rule.optimal_grain, dense)
    assert 1000 < coarse < 2500 and peak > 2 * coarse
    assert sample(system, pure, 20.0, dense) == pytest.approx(coarse, rel=0.05)  # a plateau, not a slope
    assert sample(system, pure, rule.optimal_grain, 1.0) == pytest.approx(5000)
    # Lichtenecker: pores (eps 1) and rutile mix logarithmically
    eps_rutile = rule.table["TiO2"]
    mixed = sample(system, {"BaTiO3": 0.9, "TiO2": 0.1}, rule.optimal_grain, 0.95)
    assert mixed == pytest.approx(np.exp(0.95 * (0.9 * np.log(5000) + 0.1 * np.log(eps_rutile))), rel=1e-12)


def test_qf_losses_add():
    system = load_system("CaSiO3")
    model = system.targets["CaSiO3"].performance
    rule, qf0 = model.rule, model.theoretical
    grain, rho = 5.0, 0.93
    pure = sample(system, {"CaSiO3": 1.0}, grain, rho)
    for lossy in ("CaO", "Ca2SiO4"):
        v = 0.1
        mixed = sample(system, {"CaSiO3": 1 - v, lossy: v}, grain, rho)
        inverse = ((1 - (1 - rho)) * ((1 - v) / qf0 + v / rule.table[lossy]) + rule.porosity_loss * (1 - rho)
                   + rule.boundary_loss / grain)
        assert mixed == pytest.approx(1 / inverse, rel=1e-12) and mixed < pure
    assert sample(system, {"CaSiO3": 1.0}, 1e3, 1.0 - 1e-12) == pytest.approx(qf0, rel=1e-3)
    assert sample(system, {"CaSiO3": 1.0}, grain, 0.8) < pure  # pores add loss


def test_capacity_scales_with_the_targets_weight_fraction():
    system = load_system("LiMn2O4")
    rule = system.targets["LiMn2O4"].performance.rule
    full = sample(system, {"LiMn2O4": 1.0}, 0.5, 0.8)
    for w in (0.25, 0.5, 0.9):
        assert sample(system, {"LiMn2O4": w, "Mn2O3": 1 - w}, 0.5, 0.8) == pytest.approx(w * full, rel=1e-12)
    assert sample(system, {"LiMn2O4": 1.0}, 0.5, 0.6) == full  # density does not enter
    assert full == pytest.approx(148 * rule.utilisation(np.array([0.5]))[0])
    assert sample(system, {"LiMn2O4": 1.0}, 20.0, 0.8) < 0.5 * full  # coarse grains are only partly used


def test_weight_fraction_rule_is_the_target_fraction():
    system = ybco_system()
    assert system.sintering is None
    pre = system.targets["YBa2Cu3O6.5"].precursor_sets[0]
    initial = np.tile(precursor_amounts(system, "YBa2Cu3O6.5", tuple(pre)), (3, 1))
    fired = fire(system, [Recipe("YBa2Cu3O6.5", pre, dwell_temperature=T) for T in (973, 1073, 1173)],
                 initial=initial)
    assert len(set(fired.performance)) == 3
    np.testing.assert_array_equal(fired.performance, fired.target_fraction)
    assert np.isnan(fired.density).all()


@pytest.fixture
def spinel(tmp_path):
    """Write a variant of the MgAl2O4 file: ``write(edit)`` with ``edit(data)`` changing the parsed YAML."""
    data = yaml.safe_load(Path(load_system("MgAl2O4").source).read_text())

    def write(edit) -> str:
        copy = yaml.safe_load(yaml.safe_dump(data))
        edit(copy)
        path = tmp_path / f"spinel{len(list(tmp_path.iterdir()))}.yaml"  # a new name: files are cached by path
        path.write_text(yaml.safe_dump(copy))
        return str(path)
    return write


def perf_of(data):
    return data["targets"]["MgAl2O4"]["performance"]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: perf_of(d).pop("rule"), "performance.rule: is required.*rules: lichtenecker, losses_add"),
    (lambda d: perf_of(d).update(rule="purity_squared"), "unknown rule 'purity_squared'; rules: lichtenecker"),
    (lambda d: perf_of(d).update(optimal_grain=0.4), "performance.optimal_grain: not a key of rule pore_scattering"),
    (lambda d: perf_of(d)["pore_radius"].pop("uncertainty"), "pore_radius.uncertainty: an assumption must state"),
    (lambda d: perf_of(d)["phases"].update(Unobtainium={"value": 1, "source": "x"}),
     "phases.Unobtainium: must name a phase of the file"),
    (lambda d: d.pop("sintering"), "rule pore_scattering uses the porosity: the file needs a sintering block"),
    (lambda d: d["sintering"]["max_density"].update(value=1.0), "green_density < max_density < 1"),
    (lambda d: d["sintering"].pop("half_density_at"), "sintering.half_density_at: is required"),
    (lambda d: perf_of(d).update(rule="weight_fraction"), "not a key of rule weight_fraction"),
])
def test_the_loader_refuses_bad_performance_and_sintering_blocks(spinel, edit, message):
    with pytest.raises(CatalogueError, match=message):
        load_system(spinel(edit))


def test_a_generated_file_may_score_the_weight_fraction(spinel):
    path = spinel(lambda d: (d.pop("sintering"), d["targets"]["MgAl2O4"].update(
        performance={"property": "weight fraction of MgAl2O4", "rule": "weight_fraction"})))
    system = load_system(path)
    assert system.targets["MgAl2O4"].performance.theoretical == 1.0
    with pytest.raises(CatalogueError, match="fraction, 1 at best"):
        load_system(spinel(lambda d: d["targets"]["MgAl2O4"].update(
            performance={"property": "x", "rule": "weight_fraction", "theoretical": 87})))
    assert set(RULES) == {"lichtenecker", "losses_add", "mass_balance", "pore_scattering", "weight_fraction"}


def test_programme_sintering_work_interpolates_the_step_sums():
    from synthgap.envs.chemistry.sintering import _sums, segment_sum

    spans = np.concatenate([np.linspace(0.0, 2700.0, 5001), [99.999, 100.0, 2499.75, 2500.0]])
    for q_r in (30_000.0, 60_000.0, 90_000.0):
        for steps in (16, 24):
            exact, _ = _sums(spans, 298.15, q_r, steps)
            np.testing.assert_allclose(segment_sum(spans, 298.15, q_r, steps), exact, rtol=1e-10)
