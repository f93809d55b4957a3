"""Trained agents beat a random policy on the same evaluation seeds (slow: minutes of training)."""

from __future__ import annotations

import pytest

from synthgap.agents.rl.callbacks import MemoryWriter
from synthgap.agents.rl.config import TrainConfig
from synthgap.agents.rl.evaluation import CAMPAIGN, FURNACE, random_actor, run_episodes, summarize
from synthgap.agents.rl.trainer import train

EVAL_SEED = 100  # evaluation campaigns use seeds 100..109, never seen in training (seed 0 + envs)


def _compare(config: TrainConfig, tmp_path, episodes: int = 10) -> tuple[dict, dict]:
    result = train(config, tmp_path, output_formats=[MemoryWriter()])
    model = result.model
    trained = run_episodes(lambda o: model.predict(o, deterministic=True)[0], config.env_id, config.env_kwargs,
                           episodes, EVAL_SEED)
    rand = run_episodes(random_actor(config.env_id, config.env_kwargs, EVAL_SEED), config.env_id,
                        config.env_kwargs, episodes, EVAL_SEED)
    return summarize(config.env_id, trained), summarize(config.env_id, rand)


@pytest.mark.slow
def test_ppo_beats_random_on_campaign(tmp_path):
    """BaTiO3, budget 10: about a minute of PPO."""
    config = TrainConfig(env_id=CAMPAIGN, env_kwargs={"system": "BaTiO3", "budget": 10}, algo="ppo",
                         total_timesteps=20_000, n_steps=256, batch_size=64, eval_freq=0, checkpoint_freq=0)
    trained, rand = _compare(config, tmp_path)
    assert trained["mean_reward"] > rand["mean_reward"] + 0.5  # what PPO is trained on: the measured reward
    # Its best buildable performance in unseen worlds is not better than random search's (0.24 against 0.26
    # of the oracle here, 10 campaigns): that comparison is the benchmark's, with paired tests (issue 13).


@pytest.mark.slow
def test_sac_beats_random_on_furnace(tmp_path):
    """Two-hour intervals, at most 6, 2000 random steps first: about 30 s of SAC.

    With the default 30-minute intervals the good firings (about 1470 K, unloaded in time)
    are too rare under random exploration: SAC settles in the kinetic trap near 1170 K.
    """
    config = TrainConfig(env_id=FURNACE, env_kwargs={"interval": 7200.0, "max_intervals": 6}, algo="sac",
                         total_timesteps=8_000, learning_starts=2_000, learning_rate=1e-3, eval_freq=0,
                         checkpoint_freq=0)
    trained, rand = _compare(config, tmp_path)
    # the reward is the measured property over the best single-dwell programme the lab believes
    # possible for the load (1: as good as it), so a fifth of that ceiling is the margin
    assert trained["mean_reward"] > rand["mean_reward"] + 0.2, (trained, rand)
    # and what evaluation reports, the true performance over each world's oracle, agrees
    assert 0.0 < rand["mean_performance_of_oracle"] < trained["mean_performance_of_oracle"] < 1.2, (trained, rand)


@pytest.mark.slow
def test_ppo_trained_on_train_worlds_acts_on_the_history_in_held_out_worlds(tmp_path):
    """Issue 12's acceptance: a short PPO run on training worlds; on held-out worlds, two
    campaigns whose histories differ get different actions (after the box's clipping, where
    the old policy's saturated actions were identical whatever it had seen)."""
    import numpy as np

    from synthgap.envs.campaign import CampaignEnv

    kwargs = {"system": "BaTiO3", "budget": 4, "split": "train"}
    config = TrainConfig(env_id=CAMPAIGN, env_kwargs=kwargs, algo="ppo", total_timesteps=4096, n_steps=256,
                         batch_size=64, eval_freq=0, checkpoint_freq=0)
    model = train(config, tmp_path, output_formats=[MemoryWriter()]).model
    env = CampaignEnv(**{**kwargs, "split": "test"})
    probes = [env.encode_recipe(env.decode_action(np.full(env.action_space.shape, v, dtype=np.float32)))
              for v in (-0.6, 0.6)]
    chosen = []
    for probe in probes:  # the same held-out world, two different first experiments
        env.reset(seed=7)
        obs, *_ = env.step(probe)
        action = np.clip(model.predict(obs, deterministic=True)[0], -1.0, 1.0)
        chosen.append(action)
    assert np.abs(chosen[0] - chosen[1]).max() > 1e-3, chosen
    env.close()
