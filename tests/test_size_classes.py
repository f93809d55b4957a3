"""A milled powder's particle-size distribution, fired as size classes (envs/chemistry/size_classes.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthgap.envs.chemistry import Recipe, fire, load_system, random_recipes
from synthgap.envs.chemistry.firing import network_for, starting_amounts
from synthgap.envs.chemistry.kinetics import REFERENCE_PARTICLE_SIZE, particle_size
from synthgap.envs.chemistry.size_classes import DEFAULT_SIZE_CLASSES, MILLED_GEOMETRIC_SD, ParticleSizeDistribution
from synthgap.envs.chemistry.world_rates import WorldKinetics
from synthgap.envs.lab.world import draw_world

PSD = ParticleSizeDistribution


def _midpoint_integral(system, batch, geometric_sd: float, intervals: int = 240) -> np.ndarray:
    """(B,) target weight fraction of the powder by another rule than the module's: the
    mass-weighted mean over sizes by the midpoint rule on ln d over +-6 sigma, each size
    fired on its own through the network."""
    net = network_for(system)
    start = starting_amounts(system, batch)
    s = math.log(geometric_sd)
    edges = np.linspace(-6 * s, 6 * s, intervals + 1)
    u = 0.5 * (edges[1:] + edges[:-1])
    w = np.exp(-0.5 * (u / s) ** 2)
    w /= w.sum()
    d50 = particle_size(batch.milling_time)
    amounts = np.zeros_like(start)
    for uk, wk in zip(u, w, strict=True):
        factor = (REFERENCE_PARTICLE_SIZE / (d50 * math.exp(uk))) ** 2
        amounts += wk * net.integrate_programmes(start, batch.dwell_temperature, batch.ramp_rate, batch.dwell_time,
                                                 batch.cooling_rate, batch.atmosphere, factor).amounts
    mass = amounts * net.molar_mass
    fractions = mass / mass.sum(axis=1, keepdims=True)
    cols = np.array([net.solids.index(t) for t in system.targets])[batch.target]
    return fractions[np.arange(len(batch)), cols]


@pytest.mark.parametrize("name", ["MgAl2O4", "BaTiO3", "LiMn2O4"])
def test_size_classes_agree_with_an_independent_integral_over_the_distribution(name):
    # 300 random recipes (seed 3). Measured: 21 classes within 0.0003 (90th percentile) and
    # 0.0078 (worst, one BaTiO3 recipe; 0.0035 before the kernels alternated the reactions'
    # order, whose beat within a step's parts moves with the part count, so with the size);
    # 5 classes within 0.0023; one size is 0.017-0.076 off, and the log-normal read without
    # Gauss-Hermite's sqrt(2) 0.008-0.03
    system = load_system(name)
    batch = random_recipes(system, 300, np.random.default_rng(3))
    ref = _midpoint_integral(system, batch, MILLED_GEOMETRIC_SD)
    fine = np.abs(fire(system, batch, sizes=PSD(MILLED_GEOMETRIC_SD, 21)).target_fraction - ref)
    default = np.abs(fire(system, batch, sizes=PSD()).target_fraction - ref)
    one = np.abs(fire(system, batch).target_fraction - ref)
    assert np.quantile(fine, 0.9) < 0.001 and fine.max() < 0.012
    assert np.quantile(default, 0.9) < 0.004
    assert np.quantile(one, 0.9) > 0.01  # the distribution matters: one size is not the powder


def test_fines_react_first_and_the_coarse_tail_finishes_last():
    # MgO + Al2O3 -> MgAl2O4, one Jander-law reaction, at 1573 K after 2 h of milling:
    # the fines convert faster than the median size early, the coarse tail slower late
    # (measured: 0.122 against 0.073 at 0.1 h; 0.800 against 0.868 at 32 h)
    system = load_system("MgAl2O4")

    def spinel(hours: float, sizes: ParticleSizeDistribution | None) -> float:
        recipe = Recipe("MgAl2O4", ("MgO", "Al2O3"), dwell_temperature=1573, dwell_time=hours, milling_time=2.0)
        return float(fire(system, recipe, sizes=sizes).target_fraction[0])

    assert spinel(0.1, PSD()) > spinel(0.1, None) + 0.03
    assert spinel(32.0, PSD()) < spinel(32.0, None) - 0.04
    # a wider powder spreads the curve further
    assert spinel(32.0, PSD(3.0)) < spinel(32.0, PSD(1.5)) - 0.05


def test_one_class_or_one_size_is_the_single_size_firing():
    system = load_system("BaTiO3")
    batch = random_recipes(system, 200, np.random.default_rng(5))
    plain = fire(system, batch)
    np.testing.assert_array_equal(fire(system, batch, sizes=PSD(2.0, 1)).amounts, plain.amounts)
    np.testing.assert_array_equal(fire(system, batch, sizes=PSD(1.0, 7)).amounts, plain.amounts)
    assert PSD(1.0, 7).single_size and PSD(2.0, 1).single_size and not PSD(2.0, 2).single_size


def test_the_classes_are_a_log_normal_about_the_milled_median():
    sizes = PSD(2.0, DEFAULT_SIZE_CLASSES)
    offsets, w = sizes.nodes()
    assert w.sum() == pytest.approx(1.0, abs=1e-15)
    assert np.dot(w, offsets) == pytest.approx(0.0, abs=1e-12)  # median: ln d50
    assert np.dot(w, offsets**2) == pytest.approx(math.log(2.0) ** 2, rel=1e-12)  # variance (ln sigma_g)^2
    d = sizes.diameters(np.array([0.0, 12.0]))
    np.testing.assert_allclose(np.exp(np.log(d) @ w), particle_size(np.array([0.0, 12.0])), rtol=1e-12)
    # the mean rate factor E[(d_ref/d)^2] of a log-normal is (d_ref/d50)^2 exp(2 (ln sigma_g)^2)
    m = sizes.rate_factors(np.array([2.0])) @ w
    want = (REFERENCE_PARTICLE_SIZE / particle_size(np.array([2.0]))) ** 2 * math.exp(2 * math.log(2.0) ** 2)
    assert m[0] == pytest.approx(want[0], rel=0.02)


def test_size_classes_conserve_every_element():
    system = load_system("LiMn2O4")
    net = network_for(system)
    batch = random_recipes(system, 500, np.random.default_rng(2))
    k = fire(system, batch, sizes=PSD(2.5, 7)).kinetic
    start = starting_amounts(system, batch)
    before = net.element_totals(start, np.zeros_like(k.gas_released), np.zeros_like(k.volatilized))
    np.testing.assert_allclose(net.element_totals(k.amounts, k.gas_released, k.volatilized), before, atol=1e-10)
    assert np.all(k.amounts >= 0) and k.layer.shape == (500, len(system.reactions))


def test_each_recipe_keeps_its_own_world_and_trace_across_its_classes():
    # a batch of three recipes, each in its own drawn world, through traces: fired together
    # as size classes, each must equal itself fired alone (a misaligned class would not)
    nominal = load_system("BaTiO3")
    worlds = [draw_world(nominal, seed).system for seed in (4, 9, 13)]
    batch = random_recipes(nominal, 3, np.random.default_rng(8))
    from synthgap.envs.chemistry.firing import programme_trace

    trace = programme_trace(batch)
    together = fire(nominal, batch, trace=trace, worlds=WorldKinetics.of(nominal, worlds), sizes=PSD())
    for b in range(3):
        alone = fire(nominal, batch.take(slice(b, b + 1)),
                     trace=type(trace)(trace.temperature[b:b + 1], trace.dt[b:b + 1]),
                     worlds=WorldKinetics.of(nominal, [worlds[b]]), sizes=PSD())
        np.testing.assert_allclose(together.amounts[b], alone.amounts[0], rtol=1e-12, atol=1e-15)
    nominal_only = fire(nominal, batch, trace=trace, sizes=PSD())
    assert not np.allclose(together.amounts, nominal_only.amounts, atol=1e-6)  # the worlds did act


@pytest.mark.parametrize("kwargs, message", [
    (dict(classes=0), "from 1 to 41"),
    (dict(classes=42), "from 1 to 41"),
    (dict(classes=2.5), "whole number"),
    (dict(classes=True), "whole number"),
    (dict(geometric_sd=0.5), ">= 1"),
    (dict(geometric_sd=float("nan")), "finite"),
    (dict(geometric_sd=float("inf")), "finite"),
])
def test_a_bad_distribution_says_what_to_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PSD(**kwargs)
