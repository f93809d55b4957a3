"""Campaign-v0's categorical actions, its history observation and its train/test worlds (issue 12)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import synthgap.envs  # noqa: F401  (registers the ids)
from synthgap.envs.campaign import WORLD_SPLITS, CampaignEnv
from synthgap.envs.campaign_spaces import HISTORY_FIELDS
from synthgap.envs.chemistry import Recipe, load_atmospheres


@pytest.fixture(scope="module")
def env() -> CampaignEnv:
    return CampaignEnv(budget=3)


def test_every_route_and_atmosphere_is_reachable_by_an_unsaturated_action(env):
    rng = np.random.default_rng(0)
    acts = env.actions
    for r, (target, precursors) in enumerate(env.space.routes):
        for m, atmosphere in enumerate(load_atmospheres()):
            a = rng.uniform(-0.4, 0.4, env.action_space.shape)
            a[acts.route_slice] = -0.4
            a[acts.route_slice.start + r] = 0.4
            a[acts.atmosphere_slice] = -0.4
            a[acts.atmosphere_slice.start + m] = 0.4
            recipe = env.decode_action(a.astype(np.float32))
            assert (recipe.target, recipe.precursors, recipe.atmosphere) == (target, precursors, atmosphere)


def test_a_recipe_round_trips_through_its_action(env):
    recipe = Recipe("BaTiO3", ("BaO", "TiO2"), excess=0.05, milling_time=3.0, ramp_rate=7.0,
                    dwell_temperature=1400.0, dwell_time=5.0, cooling_rate=3.0, atmosphere="O2")
    a = env.encode_recipe(recipe)
    assert np.all(np.abs(a) < 1) and env.action_space.contains(a)
    back = env.decode_action(a)
    assert (back.target, back.precursors, back.atmosphere) == (recipe.target, recipe.precursors, "O2")
    for k in ("excess", "milling_time", "ramp_rate", "dwell_temperature", "dwell_time", "cooling_rate"):
        assert getattr(back, k) == pytest.approx(getattr(recipe, k), rel=1e-5)


def test_the_history_holds_the_last_experiments_newest_first_and_the_best(env):
    obs0, _ = env.reset(seed=1)
    C, D, k = 2 * len(env.candidates), env.actions.dim, env.memory.k
    slot = D + len(HISTORY_FIELDS)
    assert np.all(obs0[C:C + k * slot + D + 1] == 0)  # nothing measured yet
    actions = [env.encode_recipe(Recipe("BaTiO3", ("BaCO3", "TiO2"), dwell_temperature=T, dwell_time=2.0))
               for T in (1300.0, 1450.0)]
    infos = []
    for a in actions:
        obs, _, _, _, info = env.step(a)
        infos.append(info)
    hist = obs[C:C + k * slot]
    np.testing.assert_allclose(hist[:D], actions[1], atol=1e-6)  # newest first
    np.testing.assert_allclose(hist[slot:slot + D], actions[0], atol=1e-6)
    perf = [i["measured_performance"] / env.reward_fn.scale for i in infos]
    assert hist[D] == pytest.approx(perf[1], rel=1e-5) and hist[slot + D] == pytest.approx(perf[0], rel=1e-5)
    assert hist[D + 7] == 1.0 and hist[slot + D + 7] == 1.0 and np.all(hist[2 * slot:] == 0)  # filled flags
    best = obs[C + k * slot:C + k * slot + D + 1]
    np.testing.assert_allclose(best[:D], actions[int(np.argmax(perf))], atol=1e-6)
    assert best[-1] == pytest.approx(max(perf), rel=1e-5)


def test_train_and_test_worlds_never_meet():
    seeds = {}
    for split in ("train", "test"):
        made = []
        env = gym.make("synthgap/Campaign-v0", budget=1, split=split,
                       lab_factory=lambda system, seed, made=made: made.append(seed) or _Lab(system),
                       disable_env_checker=True)
        for s in range(20):
            env.reset(seed=s)
        seeds[split] = made
    low, high = WORLD_SPLITS["test"]
    assert all(s < low for s in seeds["train"]) and all(low <= s < high for s in seeds["test"])
    with pytest.raises(ValueError, match="split must be one of"):
        CampaignEnv(split="validation")


class _Lab:
    kind, truth_system = "twin", None

    def __init__(self, system) -> None:
        self.system = system

    def close(self) -> None:
        pass


@pytest.mark.parametrize("bad", [0, -1, 2.5, "4"])
def test_a_history_length_that_is_not_a_positive_int_is_refused(bad):
    with pytest.raises(ValueError, match=f"history must be an int >= 1, got {bad!r}"):
        CampaignEnv(history=bad)
