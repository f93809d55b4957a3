"""A tiny training run read back through ``MlflowClient``: params, metrics, artifacts, the model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from synthgap.agents.rl.config import TrainConfig, load_config
from synthgap.experiments.cli import main

pytestmark = pytest.mark.filterwarnings(
    # SQLAlchemy 2.1 deprecation inside MLflow's SQL store, not ours
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning",
)

ENV = "synthgap/FurnaceControl-v0"
NAME = "synthgap-FurnaceControl-v0-ppo"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One PPO run of 256 steps (rollouts of 32, evaluations and checkpoints every 64)."""
    import os

    tmp = tmp_path_factory.mktemp("store")
    old = os.environ.get("SB3_LOGDIR")
    os.environ["SB3_LOGDIR"] = str(tmp / "sb3")
    cfg = tmp / "tiny.yaml"
    cfg.write_text("net_arch: [8]\nn_steps: 32\nbatch_size: 32\nn_epochs: 2\neval_episodes: 2\n")
    uri = f"sqlite:///{tmp}/mlflow.db"
    argv = ["train", "--env", ENV, "--algo", "ppo", "--timesteps", "256", "--seed", "3", "--config", str(cfg),
            "--eval-freq", "64", "--checkpoint-freq", "64", "--tracking-uri", uri, "--out", str(tmp / "out"),
            "--no-progress", "--env-kwargs", '{"max_intervals": 6}']
    try:
        assert main(argv) == 0
    finally:
        if old is None:
            os.environ.pop("SB3_LOGDIR", None)
        else:
            os.environ["SB3_LOGDIR"] = old
    from synthgap.experiments.tracking import get_client

    client = get_client(uri)
    exp = client.get_experiment_by_name("synthgap-train")
    (run,) = client.search_runs([exp.experiment_id])
    return {"uri": uri, "client": client, "run": run, "tmp": tmp, "out": tmp / "out" / run.info.run_id}


def test_params_are_the_config(trained):
    run = trained["run"]
    expected = load_config(trained["out"] / "config.yaml")
    assert expected.env_kwargs == {"max_intervals": 6} and expected.seed == 3 and expected.net_arch == [8]
    assert run.data.params == expected.as_params()
    assert run.info.status == "FINISHED"
    assert TrainConfig(**{**expected.to_dict()}) == expected


def test_runs_carry_the_source_user_and_commit_mlflow_shows(trained):
    """The UI's "Source" and "User" columns and the git commit of the code that trained."""
    import subprocess

    tags = trained["run"].data.tags
    assert tags["mlflow.source.name"] == "synthgap train" and tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.user"] and tags["synthgap.version"]
    root = Path(__file__).resolve().parents[2]
    if (root / ".git").exists():  # a checkout: the commit it ran (the suite runs from a clone)
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        assert tags["mlflow.source.git.commit"].removesuffix("+dirty") == head.strip()


def test_metric_histories(trained):
    client, run_id = trained["client"], trained["run"].info.run_id
    steps = {k: [m.step for m in client.get_metric_history(run_id, k)] for k in trained["run"].data.metrics}
    assert steps["time/total_timesteps"] == list(range(32, 257, 32))
    assert steps["train/loss"] == list(range(64, 257, 32))
    assert steps["eval/mean_reward"] == [64, 128, 192, 256]
    assert steps["final_eval/mean_reward"] == [256]
    values = {m.step: m.value for m in client.get_metric_history(run_id, "time/total_timesteps")}
    assert all(values[s] == s for s in values)


def test_artifacts(trained):
    client, run_id = trained["client"], trained["run"].info.run_id
    names = {f.path for f in client.list_artifacts(run_id)} | {f.path for f in client.list_artifacts(run_id, "plots")}
    assert {"config.yaml", "env_spec.json", "summary.json", "plots/learning_curve.png", "plots/evaluation.png"} <= names
    local = Path(client.download_artifacts(run_id, "env_spec.json", str(trained["tmp"] / "dl")))
    spec = json.loads(local.read_text())
    assert spec["id"] == ENV and spec["kwargs"] == {"max_intervals": 6} and spec["action_shape"] == [2]
    png = Path(client.download_artifacts(run_id, "plots/evaluation.png", str(trained["tmp"] / "dl")))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # artifacts stay beside the store, never in ./mlruns
    assert (trained["tmp"] / "artifacts").is_dir()


def test_registered_policy_loads_by_alias_and_acts_like_the_trained_one(trained, capsys):
    from stable_baselines3 import PPO

    from synthgap.agents.rl.registry import HASH_TAG, load_policy

    client = trained["client"]
    mv = client.get_model_version(NAME, "1")
    assert len(mv.tags[HASH_TAG]) == 64 and mv.tags["synthgap.env_id"] == ENV
    assert main(["promote", NAME, "1", "--alias", "champion", "--tracking-uri", trained["uri"], "--json"]) == 0
    promoted = json.loads(capsys.readouterr().out)
    assert promoted == {"model_uri": f"models:/{NAME}@champion", "name": NAME, "alias": "champion", "version": 1,
                        "tracking_uri": trained["uri"]}
    assert main(["promote", NAME, "9", "--tracking-uri", trained["uri"]]) == 2
    assert f"version 9 in the registry of {trained['uri']}" in capsys.readouterr().err  # names the store searched
    policy = load_policy(f"models:/{NAME}@champion", trained["uri"])
    assert (policy.env_id, policy.env_kwargs, policy.algo) == (ENV, {"max_intervals": 6}, "ppo")
    local = PPO.load(trained["out"] / "policy.zip", device="cpu")
    obs = np.random.default_rng(0).uniform(-1, 1, (16, 6)).astype(np.float32)
    np.testing.assert_array_equal(policy.predict(obs), local.predict(obs, deterministic=True)[0])
    np.testing.assert_array_equal(policy.predict(obs[0]), local.predict(obs[0], deterministic=True)[0])


@pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning")  # mlflow import
def test_pyfunc_flavour_predicts_the_same(trained):
    import mlflow.pyfunc
    from stable_baselines3 import PPO

    model = mlflow.pyfunc.load_model(f"models:/{NAME}/1")
    obs = np.random.default_rng(1).uniform(-1, 1, (4, 6)).astype(np.float32)
    local = PPO.load(trained["out"] / "policy.zip", device="cpu")
    np.testing.assert_array_equal(model.predict(obs), local.predict(obs, deterministic=True)[0])
    sig = model.metadata.signature
    assert tuple(sig.inputs.to_dict()[0]["tensor-spec"]["shape"]) == (-1, 6)
    assert tuple(sig.outputs.to_dict()[0]["tensor-spec"]["shape"]) == (-1, 2)


def test_evaluate_logs_its_own_run(trained, capsys):
    assert main(["promote", NAME, "1", "--alias", "champion", "--tracking-uri", trained["uri"]]) == 0
    capsys.readouterr()
    assert main(["evaluate", f"models:/{NAME}@champion", "--episodes", "3", "--baseline", "random", "--json",
                 "--tracking-uri", trained["uri"]]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["version"] == "1" and result["policy"]["episodes"] == 3.0 and "random" in result
    client = trained["client"]
    run = client.get_run(result["run_id"])
    assert client.get_experiment(run.info.experiment_id).name == "synthgap-evaluate"
    assert run.data.params["model_uri"] == f"models:/{NAME}@champion"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "episode_reward")] == [0, 1, 2]
    assert run.data.metrics["policy/mean_reward"] == pytest.approx(result["policy"]["mean_reward"])
    # FurnaceControl's one number: the true performance at unloading over each world's oracle, paired with random
    built = result["performance_of_oracle"]
    assert set(built) == {"policy", "random", "paired_wilcoxon_p"}
    assert built["policy"]["low"] <= built["policy"]["mean"] <= built["policy"]["high"] and built["policy"]["n"] == 3
    assert built["policy"]["mean"] == pytest.approx(result["policy"]["mean_performance_of_oracle"])
    assert run.data.metrics["performance_of_oracle/policy_mean"] == pytest.approx(built["policy"]["mean"])


@pytest.mark.parametrize("member", ["artifacts/policy.zip", "pyfunc_entry.py", "MLmodel"])
def test_tampered_artifact_is_refused_before_unpickling(trained, monkeypatch, capsys, member):
    from stable_baselines3 import PPO

    from synthgap.agents.rl.registry import TamperedModelError, load_policy

    client = trained["client"]
    src = client.get_model_version_download_uri(NAME, "1")
    zip_path = Path(src.removeprefix("file://")) / member
    original = zip_path.read_bytes()

    def refuse(*args, **kwargs):
        raise AssertionError("PPO.load called on an unverified file")

    monkeypatch.setattr(PPO, "load", refuse)
    try:
        zip_path.write_bytes(original + b"\0")
        with pytest.raises(TamperedModelError, match="modified"):
            load_policy(f"models:/{NAME}/1", trained["uri"])
        status = main(["evaluate", f"models:/{NAME}/1", "--episodes", "1", "--tracking-uri", trained["uri"]])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 2 and len(err) == 1 and "refusing to load" in err[0]
    finally:
        zip_path.write_bytes(original)


def test_unverified_and_unknown_models_are_refused(trained):
    from synthgap.agents.rl.registry import ModelURIError, UnverifiedModelError, load_policy

    client = trained["client"]
    mv = client.get_model_version(NAME, "1")
    client.create_registered_model("handmade")
    client.create_model_version("handmade", mv.source, run_id=mv.run_id)
    with pytest.raises(UnverifiedModelError, match="no synthgap.signature"):
        load_policy("models:/handmade/1", trained["uri"])
    with pytest.raises(ModelURIError, match="not found") as caught:
        load_policy(f"models:/{NAME}@nobody", trained["uri"])
    assert f"in the registry of {trained['uri']}" in str(caught.value)  # which store was searched
    assert "--tracking-uri" in str(caught.value)
    with pytest.raises(ModelURIError, match="models:/NAME@ALIAS"):
        load_policy("runs:/abc/policy", trained["uri"])


def test_train_and_evaluate_report_what_a_campaign_policy_built(tmp_path, capsys):
    """Campaign-v0: the summaries say what was built (best buildable / oracle), not only the
    reward, and evaluate compares it with random search, paired by seed."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("net_arch: [8]\nn_steps: 4\nbatch_size: 32\nn_epochs: 1\neval_episodes: 2\nn_envs: 16\n"
                   "vectorization: native\n")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert main(["train", "--env", "synthgap/Campaign-v0", "--timesteps", "64", "--config", str(cfg),
                 "--env-kwargs", '{"budget": 2, "split": "train"}', "--eval-freq", "0", "--checkpoint-freq", "0",
                 "--register-as", "tiny-campaign", "--tracking-uri", uri, "--out", str(tmp_path / "out"),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    # the system it trained on, buildable performance first (with its interval), reward second
    assert "ppo on synthgap/Campaign-v0 (BaTiO3)" in out and "over 20 episodes in held-out worlds" in out
    assert re.search(r"best buildable performance [\d.]+ \[[\d.]+, [\d.]+\] of each world's oracle; "
                     r"mean reward -?[\d.e+-]+ \[", out), out
    assert main(["evaluate", "models:/tiny-campaign/1", "--episodes", "3", "--baseline", "random",
                 "--tracking-uri", uri]) == 0
    line = capsys.readouterr().out
    assert "3 episodes in held-out worlds (split test): best buildable performance" in line
    assert line.index("paired Wilcoxon p") < line.index("mean reward")  # built first, paid second
    assert line.rstrip().endswith(f"(store {uri})")
    assert main(["evaluate", "models:/tiny-campaign/1", "--episodes", "3", "--baseline", "random", "--json",
                 "--tracking-uri", uri]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["env_kwargs"]["split"] == "train" and evaluated["evaluation_env_kwargs"]["split"] == "test"
    b = evaluated["best_buildable"]
    assert b["policy"]["low"] <= b["policy"]["mean"] <= b["policy"]["high"] and b["policy"]["n"] == 3
    assert 0.0 <= b["paired_wilcoxon_p"] <= 1.0
