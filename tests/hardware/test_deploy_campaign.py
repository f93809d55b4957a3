"""``synthgap deploy`` against the emulated lab on real ptys: campaign, dry run, crash + resume."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from synthgap.envs.chemistry import Recipe, fire
from synthgap.experiments.deploy import DeployError, DeployOptions, deploy
from synthgap.experiments.tracking import EXPERIMENT_TAG, ExperimentTracker
from synthgap.hardware.emulators.lab import LabEmulator, LabEmulatorSettings, fire_sample
from synthgap.hardware.journal import read_journal
from synthgap.hardware.registers import register

TIME_SCALE = 50_000.0  # lab s per wall s
XRD_TOLERANCE = 0.06  # ~3 sd of a measured fraction: XRD noise 0.01 per phase, then renormalised
PHYSICS_TOLERANCE = 0.02  # noise-free: 1 % dosing error on the weighed amounts, trace sampling
# third-party noise from mlflow's SQLAlchemy store, not ours
pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def policy_zip(tmp_path_factory) -> Path:
    """A tiny PPO policy for Campaign-v0 (net_arch [8], one 64-step rollout on the twin)."""
    import gymnasium as gym
    from stable_baselines3 import PPO

    import synthgap.envs  # noqa: F401

    env = gym.make("synthgap/Campaign-v0", budget=5)
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu",
                policy_kwargs={"net_arch": [8]})
    model.learn(64)
    path = tmp_path_factory.mktemp("policy") / "policy.zip"
    model.save(path)
    env.close()
    return path


@pytest.fixture
def emu(tmp_path):
    lab_emu = LabEmulator(tmp_path / "lab", LabEmulatorSettings(time_scale=TIME_SCALE, seed=5))
    lab_emu.start()
    yield lab_emu
    lab_emu.stop()


def logged_ids(uri: str) -> list[str]:
    tracker = ExperimentTracker(uri)
    runs = tracker.client.search_runs([tracker.experiment_id], max_results=1000)
    return [r.data.tags[EXPERIMENT_TAG] for r in runs]


def finished(journal: Path) -> list[dict]:
    return [e for e in read_journal(journal).events if e["event"] == "experiment_finished"]


def test_deploy_campaign_matches_twin(emu, policy_zip, tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = io.StringIO()
    t0 = time.monotonic()
    result = deploy(DeployOptions(policy=str(policy_zip), lab=emu.lab_file, budget=5, yes=True,
                                  trust_local_file=True, tracking_uri=uri), stdout=out)
    wall = time.monotonic() - t0
    assert len(result.experiments) == 5 and result.logged == 5 and result.replayed == 0
    events = finished(emu.journal_path)
    assert [e["experiment_id"] for e in events] == result.experiments
    assert sorted(logged_ids(uri)) == sorted(result.experiments)
    p = emu.furnace.params
    deviations, physics = [], []
    for e in events:
        rec = e["record"]
        assert rec["status"] == "done"
        r = Recipe.from_dict(rec["recipe"])
        temps = r.dwell_temperature - p.offset_K + np.linspace(-3, 3, 7) * p.drift_std_K
        band = [float(fire("BaTiO3", dataclasses.replace(r, dwell_temperature=float(t))).target_fraction[0])
                for t in temps]
        measured = rec["xrd_phase_fractions"][r.target]
        deviations.append(max(0.0, min(band) - measured, measured - max(band)))
        # the same sample without the XRD noise: the chain (weighing, logged trace) vs the twin
        sidecar = json.loads((emu.xrd_inbox / f"{e['experiment_id']}.sample.json").read_text())
        true = fire_sample(sidecar, p.offset_K)["target_fraction"]
        physics.append(max(0.0, min(band) - true, true - max(band)))
    assert max(physics) <= PHYSICS_TOLERANCE, physics
    assert max(deviations) <= XRD_TOLERANCE, deviations
    with pytest.raises(DeployError, match="already holds a campaign; continue it with --resume"):
        deploy(DeployOptions(policy=str(policy_zip), lab=emu.lab_file, budget=1, yes=True, trust_local_file=True))
    print(f"\n{len(events)} experiments in {wall:.1f} s wall ({60 * len(events) / wall:.1f}/min); "
          f"max deviation from the twin band: measured {max(deviations):.4f}, noise-free {max(physics):.4f}")


def test_deploy_dry_run_reaches_no_instrument(emu, policy_zip, tmp_path):
    out = io.StringIO()
    result = deploy(DeployOptions(policy=str(policy_zip), lab=emu.lab_file, budget=2, episodes=2, yes=True,
                                  dry_run=True, trust_local_file=True, tracking_uri=f"sqlite:///{tmp_path}/m.db"),
                    stdout=out)
    assert len(result.experiments) == 4 and result.logged == 0
    assert out.getvalue().count("[DRY RUN: nothing was made]") == 4
    assert all(frame[1] == 3 for frame in emu.furnace.requests)
    for station in (emu.mill, emu.press, emu.robot):
        assert station.executed == [] and set(station.requests) <= {b"STATUS?", b"ID?"}
    assert set(emu.balance.requests) <= {b"S", b"SI"}
    assert emu.xrd.answered == []
    # the rehearsal journals apart: the lab's own journal stays free for the real campaign
    assert result.journal.parent == emu.journal_path.parent and ".dry-run-" in result.journal.name
    assert all(e["record"]["status"] == "dry_run" for e in finished(result.journal)) and finished(result.journal)
    assert not emu.journal_path.exists() or not any(
        e["event"] == "experiment_started" for e in read_journal(emu.journal_path).events)
    again = deploy(DeployOptions(policy=str(policy_zip), lab=emu.lab_file, budget=1, yes=True, dry_run=True,
                                 trust_local_file=True), stdout=io.StringIO())
    assert again.journal != result.journal and len(again.experiments) == 1  # a second rehearsal: its own file


def test_operator_declines_and_local_file_needs_consent(emu, policy_zip, tmp_path):
    with pytest.raises(DeployError, match="--trust-local-file"):
        deploy(DeployOptions(policy=str(policy_zip), lab=emu.lab_file, budget=2))
    out = io.StringIO()
    result = deploy(DeployOptions(policy=str(policy_zip), lab=emu.lab_file, budget=2, trust_local_file=True,
                                  tracking_uri=f"sqlite:///{tmp_path}/m.db"), stdin=io.StringIO("n\n"), stdout=out)
    assert result.declined and result.experiments == []
    assert "Run it on the lab? [y/N]" in out.getvalue() and "dwell_temperature" in out.getvalue()
    assert emu.robot.executed == []
    names = [e["event"] for e in read_journal(emu.journal_path).events]
    assert "recipe_declined" in names and "experiment_started" not in names
    with pytest.raises(DeployError, match="no such journal"):
        deploy(DeployOptions(policy=str(policy_zip), lab=emu.lab_file, budget=1, yes=True, trust_local_file=True,
                             resume=tmp_path / "missing.jsonl"))


def test_cli_parser_and_bad_input(emu, policy_zip):
    from synthgap.experiments import deploy_cli

    top = argparse.ArgumentParser(prog="synthgap")
    deploy_cli.add_parsers(top.add_subparsers(dest="command"))
    args = top.parse_args(["deploy", "--policy", "models:/nope@champion", "--lab", str(emu.lab_file),
                           "--budget", "2", "--dry-run", "--yes"])
    assert args.func is deploy_cli.handler and args.dry_run and args.budget == 2
    with pytest.raises(SystemExit):
        top.parse_args(["deploy", "--policy", "x", "--lab", "y", "--budget", "0"])
    args = top.parse_args(["deploy", "--policy", "/no/such.zip", "--lab", str(emu.lab_file)])
    with pytest.raises(ValueError, match="neither a models:/NAME@ALIAS URI nor an existing file"):
        args.func(args)
    args = top.parse_args(["deploy", "--policy", str(policy_zip), "--lab", str(emu.lab_file), "--resume", "j",
                           "--journal", "k"])
    with pytest.raises(ValueError, match="do not also pass --journal"):
        args.func(args)


def _deploy_cmd(policy: Path, lab: Path, uri: str, *extra: str) -> list[str]:
    code = "import sys; from synthgap.experiments.cli import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, "deploy", "--policy", str(policy), "--lab", str(lab), "--yes",
            "--trust-local-file", "--tracking-uri", uri, *extra]


@contextlib.contextmanager
def _deploy_process(cmd: list[str], cwd: Path, exit_timeout_s: float = 60.0):
    """Run ``cmd``; on leaving, wait for it to end. A process that has not ended in
    ``exit_timeout_s`` is made to dump every thread's stack (faulthandler on SIGABRT) and
    the test fails with that dump, instead of hanging or leaking the process and pipes."""
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", PYTHONFAULTHANDLER="1")
    with subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        try:
            yield proc
        finally:
            try:
                proc.communicate(timeout=exit_timeout_s)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGABRT)
                try:
                    _, err = proc.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    _, err = proc.communicate()
                pytest.fail(f"deploy did not end within {exit_timeout_s} s; its stacks:\n"
                            f"{err.decode(errors='replace')[-6000:]}")


def _wait_for(journal: Path, predicate, proc: subprocess.Popen, timeout: float = 120.0) -> list[dict]:
    """Poll the journal until ``predicate(events)``; generous: a cold numba cache compiles
    in the subprocess before its first experiment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        events = read_journal(journal).events if journal.exists() else []
        if predicate(events):
            return events
        time.sleep(0.005)
    raise AssertionError("timed out waiting for the journal")


def _mid_firing(n_done: int):
    def check(events: list[dict]) -> bool:
        names = [e["event"] for e in events]
        if names.count("experiment_finished") < n_done or "experiment_started" not in names:
            return False
        last = len(names) - 1 - names[::-1].index("experiment_started")
        if "experiment_finished" in names[last:]:
            return False
        return any(e.get("command") == "setpoint" and e.get("value", 0) > 1000 for e in events[last:])
    return check


def test_sigkill_then_resume_logs_every_experiment_once(emu, policy_zip, tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with _deploy_process(_deploy_cmd(policy_zip, emu.lab_file, uri, "--budget", "6"), tmp_path) as proc:
        _wait_for(emu.journal_path, _mid_firing(2), proc)
        proc.send_signal(signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    before = [e["experiment_id"] for e in finished(emu.journal_path)]
    assert 2 <= len(before) < 6
    from synthgap.experiments.cli import main

    assert main(["deploy", "--policy", str(policy_zip), "--lab", str(emu.lab_file), "--yes", "--trust-local-file",
                 "--tracking-uri", uri, "--budget", "6", "--resume", str(emu.journal_path)]) == 0
    events = read_journal(emu.journal_path).events
    ids = [e["experiment_id"] for e in events if e["event"] == "experiment_finished"]
    assert len(ids) == 6 and len(set(ids)) == 6 and ids[:len(before)] == before
    assert sorted(logged_ids(uri)) == sorted(ids)
    names = [e["event"] for e in events]
    assert names.count("experiment_abandoned") == 1 and names.count("experiment_replayed") == len(before)
    assert "recover" in names


def test_sigterm_sends_the_furnace_to_safe_and_the_stop_latches_until_a_journaled_reset(
        emu, policy_zip, tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/m.db"
    cmd = _deploy_cmd(policy_zip, emu.lab_file, uri, "--budget", "3")
    with _deploy_process(cmd, tmp_path) as proc:
        _wait_for(emu.journal_path, _mid_firing(0), proc)
        proc.send_signal(signal.SIGTERM)
    assert proc.returncode == 128 + signal.SIGTERM
    safe = emu.limits["safe_temperature_K"]
    events = read_journal(emu.journal_path).events
    assert emu.furnace.values["target_setpoint"] == pytest.approx(safe - 273.15, abs=0.05)
    assert any(e["event"] == "command" and e.get("command") == "setpoint" and "SIGTERM" in str(e.get("reason"))
               for e in events)
    assert events[-1]["event"] == "lab_closed"
    assert any(e["event"] == "emergency_stop_done" and e["ok"] for e in events)
    assert any(e["event"] == "emergency_stop_latched" for e in events)
    # the stop latched: a resume sends nothing until an operator resets it, journaled
    from synthgap.experiments.cli import main

    resume = ["deploy", "--policy", str(policy_zip), "--lab", str(emu.lab_file), "--yes", "--trust-local-file",
              "--tracking-uri", uri, "--budget", "3", "--resume", str(emu.journal_path)]
    def writes() -> int:  # setpoint and ramp-rate writes (function 6) the furnace emulator received
        heating = {register("target_setpoint").address, register("setpoint_rate_limit").address}
        return sum(1 for frame in list(emu.furnace.requests)
                   if len(frame) == 8 and frame[1] == 6 and int.from_bytes(frame[2:4], "big") in heating)

    before = writes()
    capsys.readouterr()
    assert main(resume) == 3
    err = capsys.readouterr().err
    assert "still latched" in err and "--reset-emergency-stop REASON --operator NAME" in err
    assert writes() == before
    assert main([*resume, "--reset-emergency-stop", "furnace checked"]) == 2  # needs --operator
    assert main([*resume, "--reset-emergency-stop", "furnace checked", "--operator", "alice"]) == 0
    events = read_journal(emu.journal_path).events
    (reset,) = [e for e in events if e["event"] == "emergency_stop_reset"]
    assert reset["operator"] == "alice" and reset["reason"] == "furnace checked" and "SIGTERM" in reset["cleared"]
    assert len({e["experiment_id"] for e in events if e["event"] == "experiment_finished"}) == 3


def test_deploy_registered_policy_by_alias(emu, policy_zip, tmp_path):
    """``models:/NAME@champion``: hash-checked load through the registry, env kwargs from its metadata."""
    from types import SimpleNamespace

    from synthgap.experiments.tracking import experiment_id, get_client, log_policy_model

    uri = f"sqlite:///{tmp_path}/reg.db"
    client = get_client(uri)
    run = client.create_run(experiment_id(client, "synthgap-train", uri))
    config = SimpleNamespace(env_id="synthgap/Campaign-v0", env_kwargs={"budget": 3}, algo="ppo")
    name, version = log_policy_model(client, run.info.run_id, policy_zip, config, "deploy-test-policy")
    client.set_terminated(run.info.run_id)
    client.set_registered_model_alias(name, "champion", version)
    result = deploy(DeployOptions(policy=f"models:/{name}@champion", lab=emu.lab_file, yes=True, dry_run=True,
                                  tracking_uri=uri), stdout=io.StringIO())
    assert len(result.experiments) == 3  # budget from the model's env kwargs
    started = [e for e in read_journal(result.journal).events if e["event"] == "deploy_started"]
    assert started[0]["policy"] == name and started[0]["version"] == version and len(started[0]["sha256"]) == 64


def test_the_approval_prompt_rounds_to_instrument_resolution_and_shows_units():
    from synthgap.envs.chemistry import Recipe
    from synthgap.experiments.deploy import recipe_lines

    lines = recipe_lines(Recipe("BaTiO3", ("BaCO3", "TiO2"), milling_time=5.190191566944122,
                                dwell_temperature=874.3586640357971, ramp_rate=7.25, dwell_time=2.0))
    shown = {line.split()[0]: " ".join(line.split()[1:]) for line in lines}
    assert shown["milling_time"] == "5.19 h" and shown["ramp_rate"] == "7.2 K/min"
    assert shown["dwell_temperature"] == "874.4 K (601.2 degC)" and shown["dwell_time"] == "2.00 h"
    assert shown["precursors"] == "BaCO3 + TiO2" and shown["excess"] == "0.000 fraction"


def test_deploy_json_is_one_object_on_stdout_and_progress_goes_to_stderr(emu, policy_zip, tmp_path, capsys):
    from synthgap.envs.chemistry import load_system
    from synthgap.experiments.cli import main
    from synthgap.experiments.deploy import model_oracles

    uri = f"sqlite:///{tmp_path}/m.db"
    assert main(["deploy", "--policy", str(policy_zip), "--lab", str(emu.lab_file), "--yes", "--trust-local-file",
                 "--tracking-uri", uri, "--budget", "2", "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)  # the whole of stdout is one JSON object
    assert out["tracking_uri"] == uri and out["dry_run"] is False and not out["declined"]
    assert [e["experiment_id"] for e in out["experiments"]] == [e["experiment_id"] for e in finished(emu.journal_path)]
    first = out["experiments"][0]
    assert "unit" in first and first["property"] and math.isfinite(first["measured"])
    assert first["dwell_temperature_K"] > 0
    assert first["fraction_of_model_oracle"] == pytest.approx(first["measured"] / model_oracles(
        load_system("BaTiO3"))[first["target"]])
    assert re.search(r"-> relative permittivity [\d.]+, [\d.]+ of the best the lab's model expects \([\d.]+\)",
                     captured.err)
    assert first["experiment_id"] in captured.err  # the per-experiment lines, for a person watching
    assert sorted(logged_ids(uri)) == sorted(e["experiment_id"] for e in out["experiments"])
