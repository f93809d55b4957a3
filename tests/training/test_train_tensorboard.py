"""``synthgap train --tensorboard DIR``: the metrics MLflow gets, also as TensorBoard event files."""

from __future__ import annotations

import pytest

from synthgap.experiments.cli import main

pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning",  # MLflow's SQL store
    "ignore:.*Any type hint is inferred as AnyType:UserWarning",  # raised while mlflow.pyfunc imports
)


def _argv(tmp_path, *extra: str) -> list[str]:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("net_arch: [8]\nn_steps: 32\nbatch_size: 32\nn_epochs: 1\neval_episodes: 1\n"
                   "final_eval_episodes: 2\n")
    return ["train", "--env", "synthgap/FurnaceControl-v0", "--timesteps", "64", "--config", str(cfg),
            "--eval-freq", "32", "--checkpoint-freq", "0", "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db",
            "--out", str(tmp_path / "out"), "--no-progress", "--env-kwargs", '{"max_intervals": 4}', *extra]


def test_train_writes_tensorboard_events_with_the_runs_metrics(tmp_path, capsys):
    pytest.importorskip("tensorboard")  # the dev extra installs it; without it the flag is refused (below)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from synthgap.experiments.tracking import get_client

    assert main([*_argv(tmp_path, "--tensorboard", str(tmp_path / "tb"))]) == 0
    err = capsys.readouterr().err
    (folder,) = (tmp_path / "tb").iterdir()  # one folder per run, named by the run id
    assert f"TensorBoard {folder}" in err and "store sqlite:///" in err
    events = EventAccumulator(str(folder))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    client = get_client(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.get_run(folder.name)
    assert run.data.tags["synthgap.tensorboard"] == str(folder)
    logged = {k for k in run.data.metrics if not k.startswith("final_eval/")}  # final figures: MLflow only
    assert {"eval/mean_reward", "rollout/ep_rew_mean", "time/fps"} <= scalars
    # SB3 keeps its counters out of TensorBoard (they are TensorBoard's step axis): exclude=("tensorboard",)
    counters = {"time/total_timesteps", "time/iterations", "time/time_elapsed", "train/n_updates"}
    assert logged - counters <= scalars, logged - counters - scalars


def test_tensorboard_flag_refuses_a_file_and_says_what_to_install(tmp_path, monkeypatch, capsys):
    (tmp_path / "afile").write_text("x")
    assert main(_argv(tmp_path, "--tensorboard", str(tmp_path / "afile"))) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    assert main(_argv(tmp_path, "--tensorboard", str(tmp_path / "tb"))) == 2
    assert "pip install 'synthgap[tensorboard]'" in capsys.readouterr().err
    assert not (tmp_path / "tb").exists() and not (tmp_path / "mlflow.db").exists()  # refused before anything
