"""The shared-lab PettingZoo env: API, seeding, masks, and that coordination pays."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from synthgap.envs import shared_lab_v0
from synthgap.envs.campaign import SimLabFactory
from synthgap.envs.lab import LabParams, SimLab


def test_parallel_api():
    parallel_api_test(shared_lab_v0.parallel_env(n_agents=3, budget=3), num_cycles=10)


def test_parallel_seed():
    parallel_seed_test(lambda: shared_lab_v0.parallel_env(n_agents=3, budget=3))


class OneFurnaceTwin:
    """A lab factory: a twin with one furnace reading 40 K high; remembers every lab it made."""

    def __init__(self) -> None:
        self.made: list[tuple[str, int, SimLab]] = []
        self.closed: list[SimLab] = []

    def __call__(self, system, seed: int) -> SimLab:
        lab = SimLab(system, n_furnaces=1, seed=seed, config=LabParams(furnace_offsets_K=(40.0,)))
        lab.close = lambda: self.closed.append(lab)  # the env closes the lab it made
        self.made.append((system.name, seed, lab))
        return lab


def rollout(env, seed: int) -> list:
    """Every round's rewards and infos' hosts and lab hours, until all agents finish."""
    env.reset(seed=seed)
    out = []
    while env.agents:
        _, rewards, _, _, infos = env.step({a: action(0, env.max_num_agents) for a in env.agents})
        out.append((rewards, {a: (i["host"], i["round_lab_hours"]) for a, i in infos.items()}))
    return out


def test_runs_an_episode_on_an_injected_lab_factory():
    factory = OneFurnaceTwin()
    env = shared_lab_v0.parallel_env(n_agents=2, budget=2, lab_factory=factory)
    parallel_api_test(env, num_cycles=4)
    made_before = len(factory.made)
    rounds = rollout(env, seed=3)
    assert len(rounds) == 2 and len(factory.made) == made_before + 1
    system, seed, lab = factory.made[-1]
    assert system == "BaTiO3" and isinstance(seed, int) and env.lab is lab
    records = [r for r in lab.records.values() if r.status == "done"]
    assert len(records) == 4 and {r.furnace for r in records} == {0}  # the injected lab's one furnace
    assert lab.furnace_offsets() == pytest.approx([40.0], abs=5.0)
    assert factory.closed == [m[2] for m in factory.made[:-1]]  # each reset closed the lab before
    env.close()
    assert factory.closed[-1] is lab and env.lab is None
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})
    # another lab, other outcomes: the env measured what the injected lab made
    assert rollout(shared_lab_v0.parallel_env(n_agents=2, budget=2), seed=3) != rounds


def test_default_lab_factory_is_the_twin_with_one_furnace_for_four_chemists():
    env = shared_lab_v0.parallel_env(budget=2)
    assert env.lab_factory == SimLabFactory(n_furnaces=1) and len(env.possible_agents) == 4
    explicit = shared_lab_v0.parallel_env(budget=2, lab_factory=SimLabFactory(n_furnaces=1))
    assert rollout(env, seed=5) == rollout(explicit, seed=5)
    with pytest.raises(TypeError, match="lab_factory must be a callable"):
        shared_lab_v0.parallel_env(lab_factory="SimLab")


def test_one_episode_on_the_emulated_hardware(lab_emulator, tmp_path):
    from synthgap.hardware.lab import HardwareLab

    labs: list[HardwareLab] = []

    def hardware(system, seed: int) -> HardwareLab:  # the emulators have their own seed
        labs.append(HardwareLab(lab_emulator.lab_file, journal=tmp_path / f"journal-{len(labs)}.jsonl"))
        return labs[-1]

    env = shared_lab_v0.parallel_env(n_agents=2, budget=1, lab_factory=hardware)
    try:
        (round_,) = rollout(env, seed=0)
    finally:
        env.close()
    rewards, hosts = round_
    assert set(rewards) == {"chemist_0", "chemist_1"} and all(np.isfinite(list(rewards.values())))
    assert all(h > 0 for _, h in hosts.values())
    (lab,) = labs
    assert [r.status for r in lab.records.values()] == ["done", "done"]


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


def test_each_agent_observes_its_own_history():
    env = shared_lab_v0.parallel_env(n_agents=2, budget=3, history=2)
    env.reset(seed=2)
    d = env._d
    slot = d + 8
    acts = {a: np.full(env.action_space(a).shape, v, dtype=np.float32)
            for a, v in zip(env.agents, (-0.5, 0.5), strict=True)}
    obs, _, _, _, infos = env.step(acts)
    for a, act in acts.items():
        hist = obs[a][2:2 + 2 * slot]
        np.testing.assert_allclose(hist[:d], act[:d], atol=1e-6)  # its own recipe, newest first
        assert hist[d + 7] == 1.0 and np.all(hist[slot:] == 0)  # one experiment so far
        measured = infos[a]["measured_performance"] / env.rewards_fn[a].scale
        assert hist[d] == pytest.approx(measured, rel=1e-5)
