"""FurnaceThermalModel: steady state, OU statistics, determinism, exactness."""

from __future__ import annotations

import numpy as np
import pytest

from synthgap.envs.lab.thermal import FurnaceParams, FurnaceThermalModel


def _model(seed=0, **kw):
    return FurnaceThermalModel(FurnaceParams(**kw), np.random.default_rng(seed))


def test_steady_state_is_setpoint_minus_offset():
    m = _model(offset_K=4.0, drift_sigma_K=0.02, drift_theta_per_s=0.05, noise_K=0.5)
    n = 4000
    true_K, tc_K = m.simulate(np.full(n, 1273.15), np.full(n, 1.0))
    tail = slice(2000, None)
    # drift std = 0.02 / sqrt(0.1) = 0.063 K; the mean over 2000 s is far tighter than 0.2 K
    assert true_K[tail].mean() == pytest.approx(1273.15 - 4.0, abs=0.2)
    assert tc_K[tail].mean() == pytest.approx(1273.15, abs=0.1)
    assert tc_K[tail].std() == pytest.approx(0.5, rel=0.1)


def test_ou_stationary_variance():
    m = _model(seed=3, drift_sigma_K=0.5, drift_theta_per_s=0.1, noise_K=0.0, tau_s=5.0)
    n = 200_000
    true_K, _ = m.simulate(np.full(n, 800.0), np.full(n, 1.0))
    drift = true_K[1000:] - (800.0 - m.params.offset_K)
    expected = 0.5**2 / (2 * 0.1)
    assert drift.var() == pytest.approx(expected, rel=0.1)
    assert abs(drift.mean()) < 0.1
    lag = 10
    rho = np.corrcoef(drift[:-lag], drift[lag:])[0, 1]
    assert rho == pytest.approx(np.exp(-0.1 * lag), abs=0.05)


def test_same_seed_identical_and_different_seed_differs():
    sp = np.linspace(300, 1200, 500)
    dt = np.full(500, 2.0)
    a = _model(seed=7).simulate(sp, dt)
    b = _model(seed=7).simulate(sp, dt)
    c = _model(seed=8).simulate(sp, dt)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_exact_discretisation_independent_of_step_split():
    kw = dict(drift_sigma_K=0.0, noise_K=0.0)
    coarse = _model(**kw).simulate(np.full(10, 1000.0), np.full(10, 30.0))[0]
    fine = _model(**kw).simulate(np.full(3000, 1000.0), np.full(3000, 0.1))[0]
    assert fine[299::300] == pytest.approx(coarse, abs=1e-8)


@pytest.mark.parametrize("overshoot", [0.0, 0.05, 0.2])
def test_step_overshoot_matches_parameter(overshoot):
    m = _model(overshoot=overshoot, drift_sigma_K=0.0, noise_K=0.0, offset_K=0.0)
    true_K, _ = m.simulate(np.full(5000, 1298.15), np.full(5000, 0.5))
    step = 1000.0
    assert (true_K.max() - 1298.15) / step == pytest.approx(overshoot, abs=2e-3)


def test_step_matches_simulate_and_validation():
    a = _model(seed=1, drift_sigma_K=0.0, noise_K=0.0)
    b = _model(seed=1, drift_sigma_K=0.0, noise_K=0.0)
    stepped = np.array([a.step(900.0, 1.0) for _ in range(5)])
    true_K, tc_K = b.simulate(np.full(5, 900.0), np.ones(5))
    np.testing.assert_allclose(stepped[:, 0], true_K, rtol=0, atol=1e-9)
    np.testing.assert_allclose(stepped[:, 1], tc_K, rtol=0, atol=1e-9)
    with pytest.raises(ValueError):
        a.step(float("nan"), 1.0)
    with pytest.raises(ValueError):
        a.step(5000.0, 1.0)
    with pytest.raises(ValueError):
        a.step(900.0, 0.0)
    with pytest.raises(ValueError):
        FurnaceParams(overshoot=1.0)


def test_cannot_cool_below_ambient_and_is_fast():
    import time
    m = _model(drift_sigma_K=0.0, noise_K=0.0)
    n = 100_000
    _model().simulate(np.full(2, 300.0), np.ones(2))  # compile (or load) the kernel outside the timing
    t0 = time.perf_counter()
    true_K, _ = m.simulate(np.full(n, 0.0), np.full(n, 1.0))
    assert time.perf_counter() - t0 < 1.0
    assert true_K[-1] == pytest.approx(m.params.ambient_K)
