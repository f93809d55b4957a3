"""The batched labs (the native vector env's) against the SimPy twin they stand in for.

The same recipes in the same worlds give the same outcome distribution: two-sample
Kolmogorov-Smirnov tests on the measured target fraction and performance of 1,000
independent labs each (one experiment per lab: labs of one campaign share furnaces and lots,
so their samples are not independent). A test that cannot fail proves nothing: the same
tests detect a lab with dirtier precursors and labs without hidden worlds.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from synthgap.envs.chemistry import Recipe, RecipeBatch, fire, load_system
from synthgap.envs.chemistry.firing import programme_trace
from synthgap.envs.chemistry.world_rates import WorldKinetics
from synthgap.envs.lab.batched import BatchedLabs
from synthgap.envs.lab.params import LabParams
from synthgap.envs.lab.protocol import LabInputError
from synthgap.envs.lab.simlab import SimLab
from synthgap.envs.lab.world import draw_world

SYSTEM = load_system("BaTiO3")
N_LABS = 1000
ALPHA = 0.01


def _recipe(route: int, **kw) -> Recipe:
    values = dict(excess=0.05, milling_time=2.0, ramp_rate=10.0, dwell_temperature=1350.0, dwell_time=2.0,
                  cooling_rate=10.0, atmosphere="air") | kw
    return Recipe(target="BaTiO3", precursors=tuple(SYSTEM.targets["BaTiO3"].precursor_sets[route]), **values)


RECIPES = {
    "part-reacted": _recipe(0),  # target fraction spread over (0, 1): every noise source shows
    "near-pure": _recipe(-1, excess=0.0, milling_time=6.0, ramp_rate=3.0, dwell_temperature=1500.0, dwell_time=8.0,
                         cooling_rate=5.0, atmosphere="O2"),
}


def _twin_samples(recipe: Recipe, spread: float) -> np.ndarray:
    """(n, 2) measured target fraction and performance of the first sample of 1,000 twins (worlds 0..999)."""
    out = []
    for s in range(N_LABS):
        lab = SimLab(SYSTEM, n_furnaces=2, seed=10_000 + s, world=draw_world(SYSTEM, s, spread))
        rec = lab.run_recipe(recipe)
        if rec.status == "done":
            out.append((rec.xrd_phase_fractions["BaTiO3"], rec.performance))
    return np.array(out)


def _batched_samples(recipe: Recipe, spread: float, config: LabParams | None = None) -> np.ndarray:
    labs = BatchedLabs(SYSTEM, N_LABS, n_furnaces=2, config=config, world_spread=spread, seed=7)
    labs.reset(np.arange(N_LABS), np.arange(N_LABS))
    res = labs.run(np.arange(N_LABS), RecipeBatch.from_recipes(SYSTEM, [recipe] * N_LABS))
    ok = ~res.failed
    return np.stack([res.xrd[ok, labs.solids.index("BaTiO3")], res.performance[ok]], axis=1)


@pytest.fixture(scope="module")
def twin_outcomes() -> dict[tuple[str, float], np.ndarray]:
    return {(name, spread): _twin_samples(r, spread) for name, r in RECIPES.items() for spread in (0.0, 1.0)}


@pytest.mark.parametrize("spread", [1.0, 0.0], ids=["hidden-worlds", "nominal-world"])
@pytest.mark.parametrize("name", list(RECIPES))
def test_batched_labs_give_the_twins_outcome_distribution(twin_outcomes, name, spread):
    twin = twin_outcomes[name, spread]
    batched = _batched_samples(RECIPES[name], spread)
    assert len(twin) > 0.98 * N_LABS and len(batched) > 0.98 * N_LABS  # few breakdowns in a first firing
    for col, what in enumerate(("target fraction", "performance")):
        p = stats.ks_2samp(twin[:, col], batched[:, col]).pvalue
        assert p > ALPHA, f"{name}, spread {spread}: {what} differs from the twin's (KS p = {p:.2g})"


@pytest.mark.parametrize("change", ["dirtier precursors", "no hidden worlds"])
def test_the_distribution_test_detects_another_lab(twin_outcomes, change):
    """The tests above have power: labs that differ in one documented way are told apart."""
    if change == "dirtier precursors":
        batched = _batched_samples(RECIPES["part-reacted"], 1.0, LabParams(purity_min=0.9))
    else:
        batched = _batched_samples(RECIPES["part-reacted"], 0.0)
    twin = twin_outcomes["part-reacted", 1.0]
    p = min(stats.ks_2samp(twin[:, c], batched[:, c]).pvalue for c in range(2))
    assert p < ALPHA, f"{change}: KS p = {p:.2g}, the test cannot tell this lab from the twin"


def test_a_campaign_of_experiments_takes_the_twins_lab_time():
    """Ten experiments in a row per lab (lots, furnaces in turn, reference runs, offset walk):
    lab hours and furnace waits per experiment as the twin's."""
    recipe, labs_n, runs = RECIPES["part-reacted"], 100, 10
    twin_h, twin_wait = np.zeros((labs_n, runs)), np.zeros((labs_n, runs))
    for s in range(labs_n):
        lab = SimLab(SYSTEM, n_furnaces=2, seed=20_000 + s, world=draw_world(SYSTEM, s))
        for e in range(runs):
            rec = lab.run_recipe(recipe)
            twin_h[s, e] = (rec.finished_s - rec.started_s) / 3600.0
            twin_wait[s, e] = sum(rec.waits_s.values()) / 3600.0
    labs = BatchedLabs(SYSTEM, labs_n, n_furnaces=2, seed=3)
    labs.reset(np.arange(labs_n), np.arange(labs_n))
    batch = RecipeBatch.from_recipes(SYSTEM, [recipe] * labs_n)
    out = [labs.run(np.arange(labs_n), batch) for _ in range(runs)]
    hours = np.stack([o.lab_hours for o in out], axis=1)
    wait = np.stack([o.wait_h for o in out], axis=1)
    # a reference run (about 7 h) before each furnace's first firing: experiments 1 and 2
    assert np.median(wait[:, :2]) > 6.5 and np.median(twin_wait[:, :2]) > 6.5
    assert np.median(wait[:, 2:]) == 0.0 and np.median(twin_wait[:, 2:]) == 0.0
    assert stats.ks_2samp(twin_h.ravel(), hours.ravel()).pvalue > ALPHA
    assert abs(wait.mean() - twin_wait.mean()) < 0.25 * twin_wait.mean()


def test_a_lab_seed_gives_the_twins_world():
    labs = BatchedLabs(SYSTEM, 3, seed=0)
    labs.reset(np.arange(3), np.array([5, 11, 2**30 + 3]))
    want = WorldKinetics.of(SYSTEM, [draw_world(SYSTEM, s).system for s in (5, 11, 2**30 + 3)])
    for a, b in ((labs.worlds.reactions, want.reactions), (labs.worlds.volatiles, want.volatiles),
                 (labs.worlds.grain, want.grain)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert np.abs(labs.worlds.reactions).max() > 0.01  # the worlds are not the nominal one


def test_fired_in_a_batch_of_worlds_is_fired_in_each_world():
    """Per-sample Arrhenius parameters in one kernel call = each world's own compiled network."""
    rng = np.random.default_rng(0)
    recipes = [_recipe(int(rng.integers(2)), dwell_temperature=float(rng.uniform(900, 1700)),
                       dwell_time=float(rng.uniform(0.2, 12)), atmosphere=str(rng.choice(["air", "O2", "N2"])))
               for _ in range(16)]
    batch = RecipeBatch.from_recipes(SYSTEM, recipes)
    worlds = [draw_world(SYSTEM, s).system for s in range(16)]
    together = fire(SYSTEM, batch, worlds=WorldKinetics.of(SYSTEM, worlds))
    one_by_one = [fire(w, [r]) for w, r in zip(worlds, recipes, strict=True)]
    np.testing.assert_allclose(together.phase_fractions, np.concatenate([f.phase_fractions for f in one_by_one]),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(together.performance, [f.performance[0] for f in one_by_one], rtol=1e-9)
    nominal = fire(SYSTEM, batch, trace=programme_trace(batch))
    assert np.abs(nominal.target_fraction - together.target_fraction).max() > 0.05  # the worlds matter


def test_world_kinetics_that_do_not_fit_the_batch_or_the_network_are_refused():
    batch = RecipeBatch.from_recipes(SYSTEM, [RECIPES["part-reacted"]] * 2)
    with pytest.raises(ValueError, match="for 3 samples, amounts for 2"):
        fire(SYSTEM, batch, worlds=WorldKinetics.nominal(SYSTEM, 3))
    wrong = WorldKinetics(np.zeros((2, len(SYSTEM.reactions) + 1, 2)), np.zeros((2, len(SYSTEM.volatiles), 2)),
                          np.zeros((2, 2)))
    with pytest.raises(ValueError, match="do not fit a network"):
        fire(SYSTEM, batch, worlds=wrong)


def test_bad_requests_are_refused_with_what_to_fix():
    labs = BatchedLabs(SYSTEM, 2)
    batch = RecipeBatch.from_recipes(SYSTEM, [RECIPES["part-reacted"]] * 2)
    with pytest.raises(LabInputError, match="reset"):
        labs.run(np.arange(2), batch)
    labs.reset(np.arange(2), np.array([0, 1]))
    with pytest.raises(LabInputError, match="appears twice"):
        labs.run(np.array([0, 0]), batch)
    with pytest.raises(LabInputError, match="2 recipes for 1 labs"):
        labs.run(np.array([1]), batch)
    with pytest.raises(LabInputError, match="n_labs"):
        BatchedLabs(SYSTEM, 0)
    with pytest.raises(LabInputError, match="furnace_offsets_K"):
        BatchedLabs(SYSTEM, 2, config=LabParams(furnace_offsets_K=(1.0, 2.0)))
    with pytest.raises(ValueError, match="spread"):
        BatchedLabs(SYSTEM, 2, world_spread=-1.0)


def test_breakdowns_fail_firings_as_often_as_in_the_twin():
    """A furnace failing every 30 h on average: the share of failed experiments as the twin's
    (binomial: within 4 standard errors), a failed one measured nothing."""
    config = LabParams(mtbf_h=30.0)
    recipe, labs_n, runs = RECIPES["part-reacted"], 60, 8
    failed_twin = []
    for s in range(labs_n):
        lab = SimLab(SYSTEM, n_furnaces=2, seed=30_000 + s, config=config, world=draw_world(SYSTEM, s))
        failed_twin += [lab.run_recipe(recipe).status == "failed" for _ in range(runs)]
    labs = BatchedLabs(SYSTEM, labs_n, config=config, seed=1)
    labs.reset(np.arange(labs_n), np.arange(labs_n))
    batch = RecipeBatch.from_recipes(SYSTEM, [recipe] * labs_n)
    out = [labs.run(np.arange(labs_n), batch) for _ in range(runs)]
    failed = np.concatenate([o.failed for o in out])
    p_twin, p = float(np.mean(failed_twin)), float(failed.mean())
    se = np.sqrt(p_twin * (1 - p_twin) / failed.size + p * (1 - p) / failed.size)
    assert 0.05 < p_twin < 0.6 and abs(p - p_twin) < 4 * se, (p_twin, p)
    res = out[-1]
    assert np.isnan(res.performance[res.failed]).all() and (res.xrd[res.failed] == 0).all()


def test_a_worlds_network_gives_the_same_numbers_before_and_after_it_builds_its_tables():
    """Small batches fire a drawn world on the nominal tables with its own rate constants per step;
    a big batch makes it build its own tables: the same samples either way."""
    from synthgap.envs.chemistry import network_for, random_recipes
    from synthgap.envs.chemistry.world_kinetics import MATERIALISE_BATCH

    world = draw_world(SYSTEM, 12345).system
    batch = random_recipes(SYSTEM, MATERIALISE_BATCH + 44, np.random.default_rng(1))
    batch = batch if isinstance(batch, RecipeBatch) else RecipeBatch.from_recipes(SYSTEM, batch)
    small = np.concatenate([fire(world, batch.take(slice(i, i + 50))).phase_fractions
                            for i in range(0, len(batch), 50)])
    assert network_for(world).world is not None  # still on the nominal tables
    big = fire(world, batch).phase_fractions
    assert network_for(world).world is None  # built its own
    np.testing.assert_allclose(small, big, rtol=1e-9, atol=1e-12)
    assert np.abs(big - fire(SYSTEM, batch).phase_fractions).max() > 0.05
