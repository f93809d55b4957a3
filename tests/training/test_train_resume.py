"""Kill (SIGKILL) or interrupt (Ctrl-C) a training process after a checkpoint, resume it, and check
the metric history."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synthgap.experiments.cli import main

pytestmark = pytest.mark.filterwarnings(
    # SQLAlchemy 2.1 deprecation inside MLflow's SQL store, not ours
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning",
)

ROLLOUT = 32  # n_steps x n_envs
TOTAL = 2048
CKPT = 256


def _wait_for_checkpoint(proc, state: Path, at_least: int, timeout: float = 60.0) -> int:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, "training ended before it could be killed"
        if state.is_file():
            try:
                step = json.loads(state.read_text())["num_timesteps"]
            except (ValueError, KeyError):
                step = -1
            if step >= at_least:
                return step
        time.sleep(0.02)
    raise AssertionError("no checkpoint in time")


def _as_from_a_terminal() -> None:
    """In the child: Ctrl-C handled as a user's shell leaves it. A test run started as a
    background job (``cmd &``) hands its children SIGINT ignored, and Python keeps it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_training(tmp_path, sig: signal.Signals):
    """Start a training process, let it pass a checkpoint and run on, send ``sig``;
    return (run directory, tracking URI, exit code, stderr)."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(f"net_arch: [8]\nn_steps: {ROLLOUT}\nbatch_size: 32\nn_epochs: 4\neval_episodes: 2\n")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "synthgap.experiments.cli", "train", "--env", "synthgap/FurnaceControl-v0",
            "--timesteps", str(TOTAL), "--config", str(cfg), "--eval-freq", "128", "--checkpoint-freq", str(CKPT),
            "--tracking-uri", uri, "--out", str(out), "--no-progress"]
    env = {**os.environ, "SB3_LOGDIR": str(tmp_path / "sb3"), "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=_as_from_a_terminal)
    try:
        t0 = time.monotonic()
        while not (out.is_dir() and any(out.iterdir())):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() - t0 < 60
            time.sleep(0.05)
        (run_dir,) = out.iterdir()
        _wait_for_checkpoint(proc, run_dir / "checkpoints" / "state.json", CKPT)
        time.sleep(0.3)  # let it run past the checkpoint: metrics dumped after it must not survive
        assert proc.poll() is None, "training ended before it could be interrupted"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return run_dir, uri, proc.returncode, err.decode(errors="replace")


def _resume_and_check_history(tmp_path, run_dir: Path, uri: str) -> None:
    """Resume the run; every metric step appears exactly once, none is missing."""
    from synthgap.experiments.tracking import get_client

    killed_at = json.loads((run_dir / "checkpoints" / "state.json").read_text())["num_timesteps"]
    assert CKPT <= killed_at < TOTAL
    run_id = run_dir.name
    client = get_client(uri)
    before = [m.step for m in client.get_metric_history(run_id, "time/total_timesteps")]
    assert before and max(before) <= killed_at  # only what a checkpoint covers reached the store

    assert main(["train", "--resume", run_id, "--tracking-uri", uri, "--no-progress"]) == 0

    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    history = {k: [m.step for m in client.get_metric_history(run_id, k)] for k in run.data.metrics}
    assert history["time/total_timesteps"] == list(range(ROLLOUT, TOTAL + 1, ROLLOUT))
    for key in ("train/loss", "train/approx_kl", "train/n_updates"):
        assert history[key] == list(range(2 * ROLLOUT, TOTAL + 1, ROLLOUT)), key
    assert history["eval/mean_reward"] == list(range(128, TOTAL + 1, 128))
    for key, steps in history.items():
        assert len(steps) == len(set(steps)), f"duplicate steps in {key}"
    updates = {m.step: m.value for m in client.get_metric_history(run_id, "train/n_updates")}
    assert all(updates[s] == 4 * (s // ROLLOUT - 1) for s in updates)  # no update lost or repeated
    summary = json.loads(Path(client.download_artifacts(run_id, "summary.json", str(tmp_path))).read_text())
    assert summary["resumed_from"] == killed_at and summary["num_timesteps"] == TOTAL


def test_sigkill_then_resume_leaves_no_gap_and_no_duplicate(tmp_path):
    run_dir, uri, code, _ = _interrupt_training(tmp_path, signal.SIGKILL)
    assert code == -signal.SIGKILL
    _resume_and_check_history(tmp_path, run_dir, uri)


def test_ctrl_c_marks_the_run_killed_says_how_to_resume_and_resumes(tmp_path):
    from synthgap.experiments.tracking import get_client

    run_dir, uri, code, err = _interrupt_training(tmp_path, signal.SIGINT)
    assert code == 130, err
    assert f"resume with: synthgap train --resume {run_dir.name}" in err
    assert "Traceback" not in err
    assert get_client(uri).get_run(run_dir.name).info.status == "KILLED"
    _resume_and_check_history(tmp_path, run_dir, uri)


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    from synthgap.experiments.tracking import CHECKPOINT_TAG, OUT_TAG, experiment_id, get_client

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = get_client(uri)
    run = client.create_run(experiment_id(client, "synthgap-train", uri))
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.yaml").write_text("algo: ppo\n")
    client.set_tag(run.info.run_id, OUT_TAG, str(tmp_path / "r"))
    client.set_tag(run.info.run_id, CHECKPOINT_TAG, str(tmp_path / "r" / "checkpoints"))
    capsys.readouterr()
    assert main(["train", "--resume", run.info.run_id, "--tracking-uri", uri]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["train", "--resume", "0123abc", "--tracking-uri", uri]) == 2
    assert "no run" in capsys.readouterr().err


def test_sac_resume_restores_replay_buffer_and_pending_metrics(tmp_path):
    """Off-policy: the replay buffer comes back, and metrics saved with the checkpoint are sent once."""
    from synthgap.agents.rl.callbacks import MemoryWriter
    from synthgap.agents.rl.config import TrainConfig
    from synthgap.agents.rl.trainer import train

    config = TrainConfig(algo="sac", total_timesteps=400, net_arch=[8], batch_size=32, learning_starts=50,
                         eval_freq=100, eval_episodes=1, checkpoint_freq=128, seed=1)

    class Stop(Exception):
        pass

    def stop(step, rewards):
        if step >= 300:
            raise Stop

    first = MemoryWriter()
    with pytest.raises(Stop):
        train(config, tmp_path, output_formats=[first], on_eval=stop)
    floors = {}
    for key, _, step, _ in first.sent:
        floors[key] = max(floors.get(key, -1), step)
    second = MemoryWriter(floors=floors)
    result = train(config, tmp_path, output_formats=[second], resume=True)
    assert result.resumed_from == 256
    assert result.model.replay_buffer.size() == 400  # 256 restored + 144 new transitions
    steps: dict[str, list[int]] = {}
    for key, _, step, _ in first.sent + second.sent:
        steps.setdefault(key, []).append(step)
    for key, s in steps.items():
        assert s == sorted(set(s)), f"{key}: steps repeat or go back: {s}"
    assert steps["eval/mean_reward"] == sorted(steps["eval/mean_reward"]) and len(steps["eval/mean_reward"]) == 4


class _Store:
    """A tracking client whose first ``failures`` writes fail, as a database session
    broken by a Ctrl-C in mid-write does; records what it was finally told."""

    def __init__(self, failures: int, shared: dict):
        self.failures, self.shared = failures, shared

    def set_terminated(self, run_id, status):
        self.shared["calls"] = self.shared.get("calls", 0) + 1
        if self.shared["calls"] <= self.failures:
            raise RuntimeError("sqlalchemy: this session's transaction has been rolled back")
        self.shared[run_id] = status


def test_a_run_is_marked_killed_on_a_fresh_client_when_the_first_write_fails(capsys):
    from synthgap.experiments.train_cli import mark_ended

    shared: dict = {}
    assert mark_ended(lambda: _Store(0, shared), _Store(1, shared), "r1", "KILLED")
    assert shared["r1"] == "KILLED" and shared["calls"] == 2
    assert capsys.readouterr().err == ""


def test_a_store_that_never_answers_is_reported_not_raised(capsys):
    from synthgap.experiments.train_cli import mark_ended

    shared: dict = {}
    assert not mark_ended(lambda: _Store(99, shared), _Store(99, shared), "r2", "KILLED", attempts=2)
    assert "r2" not in shared and shared["calls"] == 2
    assert "could not mark run r2 KILLED (RuntimeError); it stays RUNNING" in capsys.readouterr().err
