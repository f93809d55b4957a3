"""Coordination in the shared lab: scripted sharing, lockstep independent learners, the study."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synthgap.agents.coordination import evaluate_policy, scripted_policy, train_independent
from synthgap.envs import shared_lab_v0
from synthgap.experiments.cli import main

KW = {"n_agents": 3, "n_furnaces": 1, "budget": 2}


def flat_oracle(truth, target):
    return 1.0  # buildable in the property's unit: enough to compare policies on the same seeds


def test_sharing_one_furnace_among_three_chemists_cuts_the_programmes_lab_hours():
    runs = {kind: evaluate_policy(lambda env, s, kind=kind: scripted_policy(env, kind, s), KW, [0, 1], flat_oracle)
            for kind in ("never_share", "always_share")}
    for alone, shared in zip(runs["never_share"], runs["always_share"], strict=True):
        assert alone.seed == shared.seed and alone.samples == shared.samples == 6
        assert alone.shared_fraction == 0.0 and shared.shared_fraction == pytest.approx(2 / 3)
        # one furnace: alone, three furnace runs a round in series; shared, one
        assert shared.lab_hours < 0.6 * alone.lab_hours and shared.throughput_per_day > alone.throughput_per_day
        assert shared.queue_wait_h < alone.queue_wait_h
        assert set(alone.best_buildable) == {"chemist_0", "chemist_1", "chemist_2"}
    with pytest.raises(ValueError, match="unknown scripted policy 'sometimes'"):
        scripted_policy(shared_lab_v0.parallel_env(**KW), "sometimes", 0)


def test_always_share_joins_only_a_chemist_with_the_same_target():
    env = shared_lab_v0.parallel_env(n_agents=4, n_furnaces=1, budget=1,
                                     targets=["Ba3Ti2O7", "BaTiO3", "Ba3Ti2O7", "BaTiO3"])
    obs, _ = env.reset(seed=0)
    act = scripted_policy(env, "always_share", 0)
    _, _, _, _, infos = env.step({a: act(a, obs[a]) for a in env.agents})
    assert {a: i["host"] for a, i in infos.items()} == {"chemist_0": "chemist_0", "chemist_1": "chemist_1",
                                                        "chemist_2": "chemist_0", "chemist_3": "chemist_1"}


def test_independent_learners_train_in_lockstep_and_a_failing_one_stops_the_others():
    ppo = {"n_steps": 16, "batch_size": 16, "n_epochs": 1, "policy_kwargs": {"net_arch": [8]}}
    models = train_independent(KW, 32, seed=0, ppo_kwargs=ppo)
    assert len(models) == 3 and all(m.num_timesteps == 32 for m in models)
    first = [next(m.policy.parameters()).detach().numpy().copy() for m in models]
    assert not np.allclose(first[0], first[1])  # each its own parameters

    def boom(**_):
        raise ValueError("learner 1 broke")
    calls = iter(range(3))

    def sabotage(model):
        if next(calls) == 1:
            model.learn = boom
    with pytest.raises(RuntimeError, match="learner 1 broke"):
        train_independent(KW, 32, seed=0, ppo_kwargs=ppo, timeout_s=60, configure=sabotage)


def test_the_study_reports_every_policy_with_intervals_and_logs_its_figure(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/m.db"
    argv = ["lab", "coordination", "--agents", "2", "--budget", "2", "--seeds", "3", "--timesteps", "64",
            "--oracle-samples", "500", "--out", str(tmp_path / "c"), "--tracking-uri", uri, "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {r["policy"]: r for r in result["summary"]}
    assert list(rows) == ["never_share", "always_share", "independent_ppo", "shared_ppo"]
    for r in rows.values():
        assert r["seeds"] == 3
        assert r["throughput_per_day_low"] <= r["throughput_per_day"] <= r["throughput_per_day_high"]
        assert 0 <= r["buildable"] and {"buildable[chemist_0]", "buildable[chemist_1]"} <= set(r)
    assert np.isnan(rows["never_share"]["buildable_p_vs_never"])
    assert 0 <= rows["always_share"]["buildable_p_vs_never"] <= 1
    assert result["env_kwargs"] == {"system": "BaTiO3", "n_agents": 2, "n_furnaces": 1, "budget": 2}
    assert min(result["eval_seeds"]) >= 1_000_000  # held out from every training reset
    from synthgap.experiments.tracking import get_client

    client = get_client(uri)
    run = client.get_run(result["mlflow_run_id"])
    assert {a.path for a in client.list_artifacts(run.info.run_id, "report")} >= {"report/coordination.png",
                                                                                 "report/coordination.md"}
    assert run.data.tags["mlflow.source.name"] == "synthgap lab coordination"
    assert run.data.tags["synthgap.kind"] == "coordination"
    with pytest.raises(SystemExit) as exit_:
        main(["lab", "coordination", "--seeds", "1"])
    assert exit_.value.code == 2 and "--seeds: must be an integer in [2, 1000], got 1" in capsys.readouterr().err
