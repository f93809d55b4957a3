"""Multi-agent training: one PPO policy shared by every chemist of the shared lab."""

from __future__ import annotations

import json

import pytest

from synthgap.experiments.cli import main

pytestmark = pytest.mark.filterwarnings(
    # SQLAlchemy 2.1 deprecation inside MLflow's SQL store, not ours
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning",
)


def test_shared_lab_trains_one_policy_with_per_agent_and_lab_metrics(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("net_arch: [8]\nn_steps: 8\nbatch_size: 24\nn_epochs: 1\neval_episodes: 1\n")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    argv = ["train", "--env", "shared_lab_v0", "--algo", "ppo", "--timesteps", "96", "--seed", "2",
            "--config", str(cfg), "--eval-freq", "0", "--checkpoint-freq", "0", "--tracking-uri", uri,
            "--out", str(tmp_path / "out"), "--no-progress", "--json",
            "--env-kwargs", json.dumps({"n_agents": 3, "budget": 2})]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    from synthgap.experiments.tracking import get_client

    client = get_client(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("synthgap-train").experiment_id])
    keys = set(run.data.metrics)
    assert {f"agents/chemist_{i}/ep_return" for i in range(3)} <= keys
    assert {"lab/round_hours", "lab/queue_wait_h", "rollout/ep_rew_mean"} <= keys
    assert run.data.params["env_id"] == "shared_lab_v0"
    assert result["model_uri"].startswith("models:/shared_lab_v0-ppo/")


def test_n_envs_is_refused_for_the_shared_lab_before_a_run_is_opened(capsys, tmp_path):
    store = tmp_path / "never-used.db"
    code = main(["train", "--env", "shared_lab_v0", "--algo", "ppo", "--timesteps", "16", "--n-envs", "2",
                 "--no-progress", "--tracking-uri", f"sqlite:///{store}"])
    assert code == 2
    assert "n_envs: shared_lab_v0 gives one slot per agent" in capsys.readouterr().err
    assert not store.exists() and not (tmp_path / "artifacts").exists()  # no store, no run, no artifacts
