"""Parameter sharing: one PPO policy for every chemist of the shared lab."""

from __future__ import annotations

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecMonitor

from synthgap.agents.shared_policy import ParallelVecEnv
from synthgap.envs import shared_lab_v0


def make():
    return shared_lab_v0.parallel_env(n_agents=3, budget=2)


def test_vec_adapter_slots_are_agents_and_episodes_restart():
    vec = ParallelVecEnv(make, seed=0)
    obs = vec.reset()
    assert obs.shape == (3,) + vec.observation_space.shape
    acts = np.stack([vec.action_space.sample() for _ in range(3)])
    _, rew, done, infos = vec.step(acts)
    assert rew.shape == (3,) and not done.any()
    obs, rew, done, infos = vec.step(acts)
    assert done.all() and all("terminal_observation" in i for i in infos)
    assert vec.env.agents == vec.agent_ids  # the episode restarted


def test_ppo_trains_one_shared_policy_deterministically(tmp_path):
    torch.set_num_threads(1)

    def train():
        vec = VecMonitor(ParallelVecEnv(make, seed=1))
        model = PPO("MlpPolicy", vec, n_steps=8, batch_size=12, n_epochs=1, seed=1,
                    policy_kwargs={"net_arch": [8]}, verbose=0)
        model.learn(48)
        return model.policy.state_dict()

    a, b = train(), train()
    for k in a:
        assert torch.equal(a[k], b[k])
