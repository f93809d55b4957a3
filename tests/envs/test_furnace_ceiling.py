"""FurnaceControl's yardstick: the best single-dwell heat programme for its load.

The reward pays the measured performance over that ceiling on the lab's belief (the nominal
system), and evaluation reports the true performance over the same ceiling in the lab's
true world (the oracle): one definition of buildable performance, as a fraction of the oracle.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from synthgap.agents.rl.evaluation import FURNACE, furnace_world_oracle, run_episodes, summarize
from synthgap.envs.buildable import buildable_performance
from synthgap.envs.chemistry import Recipe, load_system
from synthgap.envs.chemistry.recipe import ROOM_TEMPERATURE
from synthgap.envs.furnace_control import COOLING_RATE, FurnaceControlEnv
from synthgap.envs.heat_programmes import best_heat_programme

LOAD = Recipe("BaTiO3", ("BaCO3", "TiO2"), milling_time=2.0)
BUDGET_H, RAMP = 12.0, 20.0


def _random_programmes(n: int, budget_h: float, seed: int = 0) -> list[Recipe]:
    rng, out = np.random.default_rng(seed), []
    while len(out) < n:
        T, ramp = rng.uniform(573.0, 1773.0), float(np.exp(rng.uniform(np.log(2.0), np.log(RAMP))))
        left = budget_h - (T - ROOM_TEMPERATURE) / ramp / 60.0
        if left >= 0.1:
            out.append(replace(LOAD, ramp_rate=ramp, dwell_temperature=T, cooling_rate=COOLING_RATE,
                               dwell_time=float(np.exp(rng.uniform(np.log(0.1), np.log(left))))))
    return out


def test_no_programme_within_the_budget_beats_the_ceiling():
    system = load_system("BaTiO3")
    best = best_heat_programme(system, LOAD, (573.0, 1773.0), BUDGET_H, RAMP, COOLING_RATE)
    assert best.value == pytest.approx(float(buildable_performance(system, best.recipe)[0]))  # its own recipe
    others = buildable_performance(system, _random_programmes(300, BUDGET_H))
    assert others.max() <= best.value * 1.002
    assert others.max() > 0.9 * best.value  # the search is not trivially high: random ones come close
    assert best.value < system.targets["BaTiO3"].performance.theoretical


def test_the_ceiling_keeps_the_load_and_the_budget():
    system = load_system("BaTiO3")
    long = best_heat_programme(system, LOAD, (573.0, 1773.0), BUDGET_H, RAMP, COOLING_RATE)
    short = best_heat_programme(system, LOAD, (573.0, 1273.0), 2.0, RAMP, COOLING_RATE)
    r = short.recipe
    assert (r.target, r.precursors, r.milling_time, r.atmosphere) == (LOAD.target, LOAD.precursors, 2.0, "air")
    assert r.dwell_temperature <= 1273.0 and r.ramp_rate <= RAMP and r.cooling_rate == COOLING_RATE
    assert (r.dwell_temperature - ROOM_TEMPERATURE) / r.ramp_rate / 60.0 + r.dwell_time <= 2.0 + 1e-9
    assert short.value < long.value  # a cooler, shorter furnace cannot do better


@pytest.mark.parametrize("args, message", [
    (((1273.0, 873.0), 12.0), "t_range"),
    (((200.0, 873.0), 12.0), "t_range"),
    (((1673.0, 1773.0), 0.5), "leaves no dwell"),
])
def test_a_load_the_furnace_cannot_fire_is_refused(args, message):
    with pytest.raises(ValueError, match=message):
        best_heat_programme(load_system("BaTiO3"), LOAD, *args, RAMP, COOLING_RATE)


@pytest.mark.parametrize("ramp, cooling, hours, name", [
    (0.0, COOLING_RATE, BUDGET_H, "max_ramp"), (RAMP, float("nan"), BUDGET_H, "cooling_rate"),
    (RAMP, COOLING_RATE, -1.0, "max_hours"),
])
def test_a_rate_or_budget_that_is_not_positive_is_refused(ramp, cooling, hours, name):
    with pytest.raises(ValueError, match=f"{name} must be a positive number"):
        best_heat_programme(load_system("BaTiO3"), LOAD, (573.0, 1773.0), hours, ramp, cooling)


def _hold(env: FurnaceControlEnv, setpoint_K: float, intervals: int):
    a0 = (setpoint_K - env.t_min) / (env.t_max - env.t_min) * 2.0 - 1.0
    total = 0.0
    for k in range(intervals):
        _, r, done, _, info = env.step(np.array([a0, 1.0 if k == intervals - 1 else -1.0], dtype=np.float32))
        total += r
    assert done
    return r, info


def test_the_reward_is_the_measured_performance_over_the_believed_ceiling():
    env = FurnaceControlEnv(max_intervals=6)
    env.reset(seed=3)
    reward, info = _hold(env, 1673.0, 3)
    ceiling = best_heat_programme(env.system, env.recipe, (env.t_min, env.top), 6 * 1800 / 3600.0, env.ramp,
                                  COOLING_RATE, env.offset_sigma).value
    assert env.programme_ceiling().value == ceiling  # the nominal system: the lab's belief, not its world
    assert reward == pytest.approx(info["performance"] / ceiling - env.time_weight * 0.5)
    assert 0.5 < info["performance"] / ceiling < 1.1  # a good hold reaches most of it
    env.close()


def test_evaluation_reports_the_true_performance_over_the_worlds_oracle():
    kwargs = {"max_intervals": 6}
    env = FurnaceControlEnv(**kwargs, world_spread=0.0)
    env.reset(seed=0)
    # in the nominal world the oracle is the believed ceiling itself
    assert furnace_world_oracle(env) == env.programme_ceiling().value
    env.close()
    a0 = (1673.0 - 573.0) / (1773.0 - 573.0) * 2.0 - 1.0
    steps = iter([])

    def act(obs):
        nonlocal steps
        if obs[2] == 0.0:  # a fresh load: hold 1673 K for three intervals, then unload
            steps = iter([-1.0, -1.0, 1.0])
        return np.array([a0, next(steps)], dtype=np.float32)

    episodes = run_episodes(act, FURNACE, kwargs, episodes=4, seed=10)
    oracles = [e.oracle for e in episodes]
    assert len(set(oracles)) == 4  # each episode's own drawn world
    fractions = np.array([e.performance_of_oracle for e in episodes])
    truth = np.array([e.infos[-1]["privileged"]["performance"] for e in episodes])
    np.testing.assert_allclose(fractions, truth / np.array(oracles))
    out = summarize(FURNACE, episodes)
    assert out["mean_performance_of_oracle"] == pytest.approx(fractions.mean())
    assert out["mean_performance_of_oracle_low"] <= out["mean_performance_of_oracle"] <= \
        out["mean_performance_of_oracle_high"]
    assert 0.3 < fractions.min() and fractions.max() < 1.2


def test_a_load_that_cannot_reach_its_target_pays_against_the_floor_not_zero():
    """One 10-minute interval never reaches the lowest setpoint at 20 K/min: no programme, no oracle."""
    env = FurnaceControlEnv(max_intervals=1, interval=600.0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="leaves no dwell"):
        env.programme_ceiling()
    assert env.reward_scale() == 0.01 * env.system.targets["BaTiO3"].performance.theoretical
    _, reward, done, _, info = env.step(np.array([1.0, 1.0], dtype=np.float32))
    assert done and np.isfinite(reward) and reward == pytest.approx(
        info["performance"] / env.reward_scale() - env.time_weight / 6)
    assert np.isnan(furnace_world_oracle(env))
    env.close()
