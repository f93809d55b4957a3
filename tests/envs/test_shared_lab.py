"""The shared-lab PettingZoo env: API, seeding, masks, and that coordination pays."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from synthgap.envs import shared_lab_v0


def test_parallel_api():
    parallel_api_test(shared_lab_v0.parallel_env(n_agents=3, budget=3), num_cycles=10)


def test_parallel_seed():
    parallel_seed_test(lambda: shared_lab_v0.parallel_env(n_agents=3, budget=3))


def action(join_bin: int, n_agents: int) -> np.ndarray:
    a = np.zeros(9, dtype=np.float32)
    a[1] = -1.0  # no milling: the furnaces are the bottleneck
    a[3] = 0.6  # about 1350 K
    a[4] = 0.5  # about 11 h dwell
    a[8] = -1.0 + 2.0 * (join_bin + 0.5) / n_agents
    return a


def play(join: bool, n_agents: int = 4):
    env = shared_lab_v0.parallel_env(n_agents=n_agents, budget=2, n_furnaces=2)
    env.reset(seed=11)
    hours, total, hosts = 0.0, 0.0, []
    while env.agents:
        acts = {a: action(1 if join and i > 0 else 0, n_agents) for i, a in enumerate(env.agents)}
        _, rewards, _, _, infos = env.step(acts)
        hours += next(iter(infos.values()))["round_lab_hours"]
        total += sum(rewards.values())
        hosts.append({a: i["host"] for a, i in infos.items()})
    return hours, total, hosts


def test_sharing_a_furnace_load_saves_lab_time_and_pays():
    alone_h, alone_r, _ = play(join=False)
    shared_h, shared_r, hosts = play(join=True)
    assert all(h == "chemist_0" for h in hosts[0].values())  # everyone joined chemist_0's load
    assert shared_h < 0.8 * alone_h
    assert shared_r > alone_r


def test_masks_finished_agents_and_reports_masked_choice():
    env = shared_lab_v0.parallel_env(n_agents=2, budget=1)
    _, infos = env.reset(seed=0)
    np.testing.assert_array_equal(infos["chemist_0"]["action_mask"], [True, True])
    _, _, terms, _, infos = env.step({a: action(1, 2) for a in env.agents})
    # both asked to join the other: neither may host, so both fire alone, reported as masked
    assert all(terms.values()) and all(i["masked_choice"] for i in infos.values())
    np.testing.assert_array_equal(infos["chemist_0"]["action_mask"], [True, False])
    assert env.agents == []


def test_bad_actions_raise():
    env = shared_lab_v0.parallel_env(n_agents=2, budget=2)
    env.reset(seed=0)
    acts = {a: action(0, 2) for a in env.agents}
    acts["chemist_1"][2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        env.step(acts)
    with pytest.raises(ValueError, match="missing"):
        env.step({"chemist_0": action(0, 2)})
