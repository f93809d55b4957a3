"""Trained policies and users' own planners in the benchmark, beside the built-in planners."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import synthgap.envs  # noqa: F401  (registers the ids)
from synthgap.agents.benchmark import BenchmarkConfig, BenchmarkError
from synthgap.agents.benchmark_cells import Cell, run_cell
from synthgap.agents.benchmark_tables import summarise
from synthgap.agents.evaluator import result_of
from synthgap.agents.planners import CampaignPolicyPlanner, PlannerError, make_planner
from synthgap.agents.space import RecipeSpace
from synthgap.envs.chemistry import load_system
from synthgap.envs.lab_factories import DirectLabFactory


@pytest.mark.parametrize("tasks", [None, ["BaTiO3", "LiMn2O4"]], ids=["one-system", "task-distribution"])
def test_the_planner_sees_exactly_the_observation_the_env_gives(tasks):
    """Run Campaign-v0 and the policy planner side by side on the same lab records: after every
    experiment the planner's observation is the env's, entry for entry."""
    kwargs = {"budget": 5} | ({"tasks": tasks} if tasks else {})
    env = gym.make("synthgap/Campaign-v0", lab_factory=DirectLabFactory(), **kwargs).unwrapped
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(0)
    actions = [rng.uniform(-0.95, 0.95, env.action_space.shape).astype(np.float32) for _ in range(5)]
    given = iter(actions)
    planner = CampaignPolicyPlanner(RecipeSpace(env.system, env.candidates), 5, lambda o: next(given), kwargs)
    np.testing.assert_allclose(planner.observe(), obs, atol=1e-6)
    for a in actions:
        (s,) = planner.ask(1)
        assert s.recipe == env.decode_action(a)
        obs, _, _, _, info = env.step(a)
        planner.tell(s.id, result_of(env.lab.record(info["sample_id"])))
        np.testing.assert_allclose(planner.observe(), obs, atol=1e-5)


def _tiny_policy(tmp_path, env_kwargs: dict):
    """A PPO policy trained for a few hundred experiments, saved with its env arguments beside it."""
    from stable_baselines3 import PPO

    from synthgap.agents.rl.envs import make_vec_env

    venv = make_vec_env("synthgap/Campaign-v0", 32, 0, env_kwargs, "native")
    model = PPO("MlpPolicy", venv, n_steps=4, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(256)
    path = tmp_path / "policy.zip"
    model.save(path)
    path.with_suffix(".json").write_text(json.dumps(env_kwargs))
    return path


def test_a_trained_policy_runs_in_the_benchmark_beside_the_other_planners(tmp_path):
    path = _tiny_policy(tmp_path, {"budget": 3, "tasks": ["BaTiO3", "MgAl2O4"]})
    spec = f"policy:{path}"
    config = BenchmarkConfig(systems=("MgAl2O4",), planners=("random", spec), seeds=1, budget=3).validate()
    records = {p: run_cell(Cell("MgAl2O4", p, 0, 3)) for p in config.planners}
    for record in records.values():
        assert len(record["experiments"]) == 3 and all(np.isfinite(e["buildable"]) for e in record["experiments"])
    assert records[spec]["training_experiments"] == 256 and records["random"]["training_experiments"] == 0
    assert "/" not in Cell("MgAl2O4", spec, 0, 3).key and Cell("MgAl2O4", spec, 0, 3).key != Cell(
        "MgAl2O4", f"policy:{tmp_path}/other.zip", 0, 3).key
    # the planner decodes with the env's encoding: the same policy, the same recipes
    again = run_cell(Cell("MgAl2O4", spec, 0, 3))
    assert [e["recipe"] for e in again["experiments"]] == [e["recipe"] for e in records[spec]["experiments"]]
    assert records[spec]["training_systems"] == ["BaTiO3", "MgAl2O4"] and records["random"]["training_systems"] == []
    # the table says whether the policy's campaign ran in a system it trained on
    cells = [Cell("MgAl2O4", p, 0, 3) for p in config.planners] + [Cell("CaSiO3", p, 0, 3) for p in config.planners]
    recs = {**{c.key: records[c.planner] for c in cells[:2]}, **{c.key: run_cell(c) for c in cells[2:]}}
    oracles = {k: {"value": 1.0} for k in ("MgAl2O4", "CaSiO3")}
    held = {(r["system"], r["planner"]): r["held_out_system"] for r in summarise(config, cells, recs, oracles).summary}
    assert held == {("MgAl2O4", "random"): "", ("MgAl2O4", spec): "no", ("CaSiO3", "random"): "",
                    ("CaSiO3", spec): "yes"}


def test_a_policy_that_cannot_describe_the_system_is_refused(tmp_path):
    path = _tiny_policy(tmp_path, {"budget": 3})  # BaTiO3 alone
    with pytest.raises(PlannerError, match="trained on BaTiO3 alone"):
        make_planner(f"policy:{path}", RecipeSpace(load_system("MgAl2O4")), 3)
    with pytest.raises(BenchmarkError, match="not a models:/ URI nor an SB3 .zip"):
        BenchmarkConfig(systems=("BaTiO3",), planners=(f"policy:{tmp_path}/missing.zip",)).validate()


def test_your_own_planner_joins_the_benchmark_as_module_and_class(tmp_path, monkeypatch):
    """The README's example planner, as printed there, runs in the benchmark."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    code = readme.split("# my_planners.py\n", 1)[1].split("```", 1)[0]
    (tmp_path / "my_planners.py").write_text(code + "\n\nclass NotAPlanner:\n    pass\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = BenchmarkConfig(systems=("BaTiO3",), planners=("my_planners:HotAndLong",), seeds=1, budget=2).validate()
    record = run_cell(Cell("BaTiO3", config.planners[0], 0, 2))
    assert [e["recipe"]["dwell_temperature"] for e in record["experiments"]] == [1773.0, 1773.0]
    with pytest.raises(BenchmarkError, match="not a subclass"):
        BenchmarkConfig(systems=("BaTiO3",), planners=("my_planners:NotAPlanner",)).validate()
    with pytest.raises(BenchmarkError, match="cannot import"):
        BenchmarkConfig(systems=("BaTiO3",), planners=("no_such_module:Planner",)).validate()
    with pytest.raises(BenchmarkError, match="unknown planner"):
        BenchmarkConfig(systems=("BaTiO3",), planners=("ppo",)).validate()
