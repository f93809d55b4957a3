"""One conformance suite over every registered synthgap id (Gymnasium's test_envs habit)."""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import synthgap.envs

FAST_KWARGS = {"synthgap/Campaign-v0": {"budget": 4}, "synthgap/FurnaceControl-v0": {"max_intervals": 6}}


@pytest.fixture(params=synthgap.envs.ENV_IDS)
def env_id(request):
    return request.param


def make(env_id, **kw):
    return gym.make(env_id, **{**FAST_KWARGS[env_id], **kw})


def test_gymnasium_check_env(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(make(env_id).unwrapped, skip_render_check=True)


def test_sb3_check_env(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(make(env_id).unwrapped, warn=True)


def rollout(env, seed):
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [obs]
    for _ in range(20):
        obs, r, term, trunc, _ = env.step(env.action_space.sample())
        out += [obs, np.array([r])]
        if term or trunc:
            break
    return np.concatenate([np.ravel(x) for x in out])


def test_seeded_rollouts_are_identical_and_seeds_differ(env_id):
    a, b, c = rollout(make(env_id), 3), rollout(make(env_id), 3), rollout(make(env_id), 4)
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_env_pickles_before_reset(env_id):
    """As Gymnasium's own test: the made env pickles (subprocess vector envs need it)."""
    env = make(env_id)
    clone = pickle.loads(pickle.dumps(env))
    np.testing.assert_array_equal(env.reset(seed=5)[0], clone.reset(seed=5)[0])
    a = env.action_space.sample()
    np.testing.assert_array_equal(env.step(a)[0], clone.step(a)[0])


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1.5, -1.01])
def test_bad_actions_raise_and_are_never_clipped(env_id, bad):
    env = make(env_id)
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape, dtype=np.float32)
    action[0] = bad
    with pytest.raises(ValueError, match="action"):
        env.step(action)


def test_wrong_shape_raises(env_id):
    env = make(env_id)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(env.action_space.shape[0] + 1, dtype=np.float32))


def test_make_vec_works(env_id):
    vec = gym.make_vec(env_id, num_envs=2, vectorization_mode="sync", **FAST_KWARGS[env_id])
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (2,) + vec.single_observation_space.shape
    obs, r, term, trunc, _ = vec.step(vec.action_space.sample())
    assert r.shape == (2,)
    vec.close()
