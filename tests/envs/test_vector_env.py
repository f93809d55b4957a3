"""The native vector env of ``synthgap/Campaign-v0`` (``gymnasium.make_vec``, vector entry point)."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import synthgap.envs  # noqa: F401  (registers the ids)
from synthgap.envs.buildable import buildable_performance
from synthgap.envs.campaign_vector import CampaignVectorEnv
from synthgap.envs.chemistry import RecipeBatch
from synthgap.envs.lab.batched import BatchedResult
from synthgap.envs.lab.world import draw_world

KW = dict(budget=3)


def make(n: int = 4, **kw) -> CampaignVectorEnv:
    env = gym.make_vec("synthgap/Campaign-v0", num_envs=n, vectorization_mode="vector_entry_point", **(KW | kw))
    assert isinstance(env, CampaignVectorEnv)
    return env


def actions(env, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, env.action_space.shape).astype(np.float32)


def test_make_vec_builds_the_native_env_with_the_single_envs_spaces():
    vec = make(5)
    single = gym.make("synthgap/Campaign-v0", **KW)
    assert vec.single_observation_space == single.observation_space
    assert vec.single_action_space == single.action_space
    assert vec.observation_space.shape == (5, *single.observation_space.shape)
    assert gym.make_vec("synthgap/Campaign-v0", num_envs=2).__class__ is CampaignVectorEnv  # the default mode
    obs, _ = vec.reset(seed=0)
    assert vec.observation_space.contains(obs)
    for _ in range(3):
        obs, reward, term, trunc, info = vec.step(actions(vec))
        assert vec.observation_space.contains(obs) and reward.shape == term.shape == trunc.shape == (5,)
        assert reward.dtype == np.float64 and term.dtype == trunc.dtype == np.bool_
    assert term.all() and not trunc.any()  # the budget of 3 is spent


def test_a_seed_reproduces_a_run_and_another_seed_gives_other_labs():
    def run(seed):
        env = make(3)
        out = [env.reset(seed=seed)[0]]
        for k in range(3):
            obs, r, *_ = env.step(actions(env, k))
            out += [obs, r]
        return out

    a, b, c = run(1), run(1), run(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[-1], c[-1])


def test_next_step_autoreset_ignores_the_action_and_starts_a_new_campaign():
    env = make(2, budget=2)
    first, _ = env.reset(seed=0)
    seeds = env.labs.lab_seeds.copy()
    env.step(actions(env, 1))
    obs, _, term, _, _ = env.step(actions(env, 2))
    assert term.all()
    assert np.allclose(obs[:, -2], 0.0)  # experiments left / budget: none
    obs, reward, term, trunc, info = env.step(np.ones(env.action_space.shape, np.float32))
    assert not term.any() and not trunc.any() and (reward == 0).all() and info == {}
    assert np.allclose(obs[:, -2], 1.0) and np.allclose(obs[:, -1], 0.0)  # a fresh campaign
    assert (env.labs.lab_seeds != seeds).all()  # in labs of their own
    C = env.layouts[0].descriptors.size
    np.testing.assert_array_equal(obs[:, :C], first[:, :C])


def test_same_step_autoreset_hands_over_the_last_observation():
    env = make(3, budget=2, autoreset_mode="same_step")
    assert env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    env.reset(seed=0)
    env.step(actions(env, 1))
    obs, reward, term, _, info = env.step(actions(env, 2))
    assert term.all() and info["_final_obs"].all()
    last = np.stack(list(info["final_obs"]))
    assert np.allclose(last[:, -2], 0.0) and np.allclose(obs[:, -2], 1.0)
    assert np.isfinite(info["final_info"]["measured_performance"]).all()
    assert not np.allclose(reward, 0.0)


def test_reset_mask_resets_only_the_campaigns_asked():
    env = make(3)
    env.reset(seed=0)
    env.step(actions(env))
    seeds = env.labs.lab_seeds.copy()
    obs, _ = env.reset(options={"reset_mask": np.array([False, True, False])})
    assert seeds[0] == env.labs.lab_seeds[0] and seeds[1] != env.labs.lab_seeds[1]
    assert obs[1, -2] == 1.0 and obs[0, -2] < 1.0
    with pytest.raises(ValueError, match="reset_mask must have shape"):
        env.reset(options={"reset_mask": np.ones(2, bool)})


def test_observations_hold_what_the_lab_measured_and_the_actions_taken():
    env = make(4, budget=5)
    env.reset(seed=3)
    lay = env.layouts[0]
    a = actions(env, 5)
    obs, reward, _, _, info = env.step(a)
    c0 = lay.descriptors.size
    D = lay.actions.dim
    np.testing.assert_allclose(obs[:, c0:c0 + D], a, atol=1e-6)  # the newest history slot: the action taken
    perf = obs[:, c0 + D]
    np.testing.assert_allclose(perf, info["measured_performance"] / lay.reward_fn.scale, rtol=1e-5, atol=1e-6)
    frac = np.nan_to_num(info["target_fraction"])
    np.testing.assert_allclose(obs[:, c0 + D + 1], frac, rtol=1e-5, atol=1e-6)
    xrd = obs[:, -4 - len(env.system.solids):-4]
    ok = ~info["failed"]
    np.testing.assert_allclose(xrd[ok].sum(axis=1), 1.0, atol=1e-5)  # a measured scan sums to 1
    recipes = RecipeBatch.from_recipes(env.system, env.decode_actions(a))
    want = lay.reward_fn.score_batch(recipes, info["measured_performance"], info["lab_hours"], info["target_fraction"],
                                     info["failed"])[0]
    np.testing.assert_allclose(reward, want)
    assert list(info["lab"]) == ["batched"] * 4 and "privileged" not in info


def test_identical_measurements_pay_identical_rewards_whatever_the_recipe():
    """The leak test of the reward: the vector env pays what its labs report, nothing else."""
    env = make(4)
    env.reset(seed=0)
    P = len(env.labs.solids)
    col = env.labs.solids.index("BaTiO3")

    def same_report(index, batch):
        xrd = np.zeros((len(index), P))
        xrd[:, col] = 1.0
        n = len(index)
        return BatchedResult(np.full(n, 100.0), xrd, np.zeros(n, bool), np.full(n, 10.0), np.full(n, 0.4),
                             np.zeros(n), np.full(n, 1400.0), np.full(n, 1.0), np.full(n, 0.3), np.full(n, 5.0))

    env.labs.run = same_report
    a = actions(env, 9)
    routes = env.layouts[0].actions.route_slice
    for j in range(4):  # every campaign's recipe the first route (the others measure 0 of their target)
        a[j, routes] = -1.0
        a[j, routes.start] = 1.0
    _, reward, _, _, info = env.step(a)
    assert len({r.dwell_temperature for r in env.decode_actions(a)}) == 4  # four different recipes
    assert np.unique(reward).size == 1


def test_truth_is_only_under_privileged_and_is_the_true_worlds_buildable():
    env = make(3, privileged=True)
    env.reset(seed=4)
    a = actions(env, 4)
    _, _, _, _, info = env.step(a)
    allowed = {"measured_performance", "target_fraction", "failed", "lab_hours", "best_performance", "lab",
               "system", "reward_parts", "privileged"}
    assert {k.lstrip("_") for k in info} == allowed
    recipes = env.decode_actions(a)
    for i, seed in enumerate(env.lab_seeds):
        world = draw_world(env.system, int(seed)).system
        want = buildable_performance(world, recipes[i])[0]
        assert info["privileged"]["buildable"][i] == pytest.approx(want, rel=1e-9)


def test_split_draws_train_and_test_labs_from_their_seed_ranges():
    train, test = make(8, split="train"), make(8, split="test")
    train.reset(seed=0)
    test.reset(seed=0)
    assert (train.labs.lab_seeds < 2**30).all() and (test.labs.lab_seeds >= 2**30).all()


@pytest.mark.parametrize("bad, match", [
    (lambda shape: np.zeros((shape[0] - 1, shape[1])), "must have shape"),
    (lambda shape: np.full(shape, np.nan), "must be finite"),
    (lambda shape: np.full(shape, 1.5), "outside"),
], ids=["shape", "nan", "outside"])
def test_bad_actions_are_refused_not_clipped(bad, match):
    env = make(4)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(bad(env.action_space.shape))


@pytest.mark.parametrize("kw, match", [
    (dict(lab_factory=object()), "vectorization_mode='sync'"),
    (dict(autoreset_mode="later"), "autoreset_mode"),
    (dict(budget=0), "budget"),
    (dict(split="validation"), "split"),
])
def test_bad_arguments_are_refused_with_what_to_fix(kw, match):
    with pytest.raises(ValueError, match=match):
        make(2, **kw)


def test_step_before_reset_is_refused():
    with pytest.raises(RuntimeError, match="reset"):
        env = make(2)
        env.step(np.zeros(env.action_space.shape, np.float32))


def test_stable_baselines3_trains_through_the_adapter(tmp_path):
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    from synthgap.agents.rl.vector_adapter import VectorEnvAdapter

    with pytest.raises(ValueError, match="same_step"):
        VectorEnvAdapter(make(2))
    venv = VecMonitor(VectorEnvAdapter(make(16, budget=4, autoreset_mode="same_step", split="train")))
    model = PPO("MlpPolicy", venv, n_steps=8, batch_size=64, n_epochs=1, seed=0, device="cpu",
                tensorboard_log=None, verbose=0)
    model.learn(512)
    assert model.num_timesteps == 512
    assert len(model.ep_info_buffer) == min(100, 512 // 4)  # every campaign's episodes (SB3 keeps the last 100)
    assert all(e["l"] == 4 for e in model.ep_info_buffer)
    act, _ = model.predict(venv.reset(), deterministic=True)
    assert act.shape == (16, venv.action_space.shape[0])


@pytest.mark.parametrize("kind", ["measured", "buildable", "performance_only"])
def test_one_experiment_and_a_batch_of_them_are_scored_alike(kind):
    """The single env scores one experiment, the vector env a batch: the same rewards and parts."""
    from synthgap.envs.chemistry import RecipeBatch, load_system, random_recipes
    from synthgap.envs.reward import Reward

    system = load_system("BaTiO3")
    rng = np.random.default_rng(2)
    batch = random_recipes(system, 12, rng)
    batch = batch if isinstance(batch, RecipeBatch) else RecipeBatch.from_recipes(system, batch)
    reward = Reward(system, list(system.targets), kind)
    perf = rng.uniform(0, 2 * reward.scale, 12)
    hours, failed = rng.uniform(1, 40, 12), rng.random(12) < 0.3
    fraction = np.where(failed, np.nan, rng.uniform(0, 1, 12))
    together = np.stack(reward.score_batch(batch, perf, hours, fraction, failed), axis=1)
    one_by_one = np.array([dataclasses.astuple(reward(batch.recipe(system, i), perf[i], hours[i], fraction[i],
                                                      bool(failed[i]))) for i in range(12)])
    np.testing.assert_allclose(together, one_by_one, rtol=1e-12, equal_nan=True)
    assert len(np.unique(together[:, 1])) > 6  # the parts vary with the inputs (not all 0 or NaN)
