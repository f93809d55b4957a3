"""Every env runs an episode on every lab backend that can serve it.

The envs see only the lab front-end (:class:`~synthgap.envs.lab.frontend.Lab`): the SimPy twin,
the direct backend, and the hardware lab on the pty emulators (``lab_emulator``). Each episode
must leave a record per step in the lab that made it, name that lab in its infos, and pay
finite rewards.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import synthgap.envs  # noqa: F401  (registers the ids)
from synthgap.envs import shared_lab_v0
from synthgap.envs.lab_factories import DirectLabFactory, SimLabFactory


class Recording:
    """Wraps a lab factory; remembers the labs it made and which of them were closed."""

    def __init__(self, make) -> None:
        self.make, self.labs, self.closed = make, [], []

    def __call__(self, system, seed: int):
        lab = self.make(system, seed)
        close = lab.close

        def closing() -> None:
            self.closed.append(lab)
            close()
        lab.close = closing
        self.labs.append(lab)
        return lab


@pytest.fixture
def hardware_factory(lab_emulator, tmp_path):
    from synthgap.hardware.lab import HardwareLab

    made = []

    def make(system, seed: int):  # the emulators have their own seed
        made.append(HardwareLab(lab_emulator.lab_file, journal=tmp_path / f"journal-{len(made)}.jsonl"))
        return made[-1]
    yield make
    for lab in made:
        lab.close()


BACKENDS = {"twin": lambda: SimLabFactory(1), "direct": lambda: DirectLabFactory()}


def episode(env, seed: int, action) -> list[tuple[float, dict]]:
    env.reset(seed=seed)
    out, done = [], False
    while not done:
        _, reward, terminated, truncated, info = env.step(action(len(out)))
        out.append((float(reward), info))
        done = terminated or truncated
    return out


@pytest.mark.parametrize("kind", ["twin", "direct", "hardware"])
def test_campaign_runs_an_episode(kind, request):
    make = request.getfixturevalue("hardware_factory") if kind == "hardware" else BACKENDS[kind]()
    factory = Recording(make)
    env = gym.make("synthgap/Campaign-v0", budget=2, lab_factory=factory, disable_env_checker=True)
    steps = episode(env, 4, lambda k: np.full(env.action_space.shape, 0.2 * k, dtype=np.float32))
    lab = factory.labs[-1]
    assert len(steps) == 2 and all(math.isfinite(r) for r, _ in steps)
    assert {info["lab"] for _, info in steps} == {kind} and lab.kind == kind
    assert [lab.record(info["sample_id"]).status for _, info in steps] == ["done", "done"]
    env.reset(seed=5)
    assert factory.closed == [lab]  # the next reset closed the lab the env had made
    env.close()
    assert factory.closed[-1] is factory.labs[-1]


@pytest.mark.parametrize("kind", ["twin", "direct", "hardware"])
def test_furnace_control_runs_an_episode_through_the_lab_furnace(kind, request):
    make = request.getfixturevalue("hardware_factory") if kind == "hardware" else BACKENDS[kind]()
    factory = Recording(make)
    env = gym.make("synthgap/FurnaceControl-v0", max_intervals=3, interval=600.0, lab_factory=factory)
    steps = episode(env, 2, lambda k: np.array([0.8, -1.0], dtype=np.float32))
    lab = factory.labs[-1]
    (sid,) = {info["sample_id"] for _, info in steps}
    rec = lab.record(sid)
    assert len(steps) == 3 and rec.status == "done" and lab.kind == kind
    assert len(rec.programme.segments) >= 4 and rec.programme.segments[-1].kind == "cool"  # ramps, holds, the cool
    last = steps[-1][1]
    assert last["status"] == "done" and last["performance"] == rec.performance  # paid what the lab measured
    # paid against the best the lab believes possible in this load's half hour (FurnaceControl's docstring)
    scale = env.unwrapped.reward_scale()
    assert scale >= 0.01 * lab.system.targets["BaTiO3"].performance.theoretical
    assert steps[-1][0] == pytest.approx(-0.005 * 600 / 3600 + rec.performance / scale)
    assert ("privileged" in last) == (kind != "hardware")  # truth only where there is one, under its key
    env.close()


@pytest.mark.parametrize("kind", ["twin", "direct"])
def test_shared_lab_runs_an_episode(kind):
    factory = Recording(BACKENDS[kind]())
    env = shared_lab_v0.parallel_env(n_agents=2, budget=2, lab_factory=factory)
    env.reset(seed=1)
    rounds = 0
    while env.agents:
        _, rewards, _, _, _ = env.step({a: env.action_space(a).sample() * 0 for a in env.agents})
        assert all(math.isfinite(r) for r in rewards.values())
        rounds += 1
    lab = factory.labs[-1]
    assert rounds == 2 and lab.kind == kind
    assert sum(r.status == "done" for r in lab.records.values()) == 4
    env.close()
