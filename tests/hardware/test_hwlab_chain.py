"""HardwareLab against the whole emulated lab on real pseudo-terminals."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from synthgap.envs.chemistry import Recipe, fire
from synthgap.envs.lab.protocol import LabInputError
from synthgap.hardware.campaign_state import ScaledClock
from synthgap.hardware.emulators.cli import add_emulate_parser, run_emulate
from synthgap.hardware.emulators.lab import LabEmulator, LabEmulatorSettings, fire_sample
from synthgap.hardware.errors import ConfigError
from synthgap.hardware.journal import read_journal
from synthgap.hardware.lab import HardwareLab, HardwareLabError, load_lab_file, record_from_dict, record_to_dict
from synthgap.hardware.registers import register

EXAMPLE = Path(__file__).resolve().parents[2] / "hardware" / "examples" / "lab.yaml"
TIME_SCALE = 50_000.0  # lab s per wall s
XRD_TOLERANCE = 0.06  # ~3 sd of a measured fraction: XRD noise 0.01 per phase, then renormalised
FURNACE_COMMANDS = {"setpoint": "target_setpoint", "ramp_rate": "setpoint_rate_limit",
                    "setpoint_high_limit": "setpoint_high_limit", "setpoint_low_limit": "setpoint_low_limit"}


@pytest.fixture
def emu(tmp_path):
    lab_emu = LabEmulator(tmp_path / "lab", LabEmulatorSettings(time_scale=TIME_SCALE, seed=3))
    lab_emu.start()
    yield lab_emu
    lab_emu.stop()


def lab_file_with(emu, path: Path, section: str, **values) -> Path:
    """A copy of the emulated lab's file at ``path`` with ``values`` set in ``section``."""
    data = yaml.safe_load(emu.lab_file.read_text())
    data[section].update(values)
    path.write_text(yaml.safe_dump(data))
    return path


def recipe(**kw) -> Recipe:
    base = dict(dwell_temperature=1473.0, dwell_time=2.0, ramp_rate=20.0, cooling_rate=20.0, milling_time=1.0)
    base.update(kw)
    return Recipe("BaTiO3", ("BaCO3", "TiO2"), **base)


def twin_band(r: Recipe, emu: LabEmulator) -> tuple[float, float]:
    """Target fraction of ``fire`` at the sample's dwell temperature +- 3 sigma of the drift."""
    p = emu.furnace.params
    centre = r.dwell_temperature - p.offset_K  # the controller holds the thermocouple, 3 K above the sample
    ks = centre + np.linspace(-3, 3, 7) * p.drift_std_K
    vals = [float(fire("BaTiO3", dataclasses.replace(r, dwell_temperature=float(k))).target_fraction[0]) for k in ks]
    return min(vals), max(vals)


def furnace_writes(emu: LabEmulator) -> list[tuple[str, float]]:
    """(register, K or K/min) of every Modbus write the furnace emulator received."""
    out = []
    for frame in emu.furnace.requests:
        if len(frame) == 8 and frame[1] == 6:
            addr, raw = struct.unpack(">HH", frame[2:6])
            reg = register(addr)
            value = (raw - 0x10000 if reg.signed and raw >= 0x8000 else raw) / 10.0
            out.append((reg.name, value if reg.name == "setpoint_rate_limit" else value + 273.15))
    return out


class RecordingClock:
    """The lab's default clock (scaled monotonic), remembering every time it told, lab s."""

    def __init__(self, time_scale: float) -> None:
        self.inner = ScaledClock(time_scale)
        self.told: list[float] = []

    def __call__(self) -> float:
        t = self.inner()
        self.told.append(t)
        return t


def journaled_furnace_commands(events) -> list[tuple[str, float]]:
    return [(FURNACE_COMMANDS[e["command"]], float(e["value"])) for e in events
            if e["event"] == "command" and e.get("command") in FURNACE_COMMANDS and e.get("value") is not None]


def test_run_recipe_fills_record_and_matches_twin(emu):
    clock = RecordingClock(TIME_SCALE)
    lab = HardwareLab(emu.lab_file, clock=clock)
    try:
        r = recipe()
        rec = lab.run_recipe(r)
        assert rec.status == "done" and rec.finished_s > rec.started_s
        # lab clock: the record's times and the firing's are the injected clock's, and the
        # programme is waited out in lab time (no bound on the overhead: at 50,000x one
        # loaded-machine second of Modbus traffic is 14 lab hours)
        assert rec.started_s in clock.told and rec.finished_s in clock.told
        firing = lab.firings[-1]
        assert firing.started_s in clock.told and firing.finished_s in clock.told
        assert rec.started_s <= firing.started_s < firing.finished_s <= rec.finished_s
        prog_h = sum(s.duration_s for s in rec.programme.segments) / 3600.0
        lab_h = (rec.finished_s - rec.started_s) / 3600.0
        assert prog_h < (firing.finished_s - firing.started_s) / 3600.0 <= lab_h
        for p, m in lab.commanded_masses(r):
            assert rec.weighed_g[p] == pytest.approx(m, rel=0.04)
        assert rec.mill_time_h == 1.0 and rec.furnace == 0 and rec.firing_id
        assert rec.tc_summary["tc_dwell_mean_K"] == pytest.approx(r.dwell_temperature, abs=15.0)
        assert set(rec.xrd_phase_fractions) == set(lab.system.solids)
        assert sum(rec.xrd_phase_fractions.values()) == pytest.approx(1.0)
        assert np.isfinite(rec.performance) and rec.performance > 0
        # the twin, fired through the thermocouple's log (the furnace's own lag and overshoot
        # included: BaTiO3 at 1473 K is mid-way from Ba2TiO4, where the history matters), and
        # the programme's band as a coarser check
        (sidecar,) = emu.xrd_inbox.glob("*.sample.json")
        twin = fire_sample(json.loads(sidecar.read_text()), emu.furnace.params.offset_K)["target_fraction"]
        measured = rec.xrd_phase_fractions["BaTiO3"]
        assert abs(measured - twin) <= XRD_TOLERANCE, (measured, twin)
        lo, hi = twin_band(r, emu)
        assert lo - 2 * XRD_TOLERANCE <= twin <= hi + 2 * XRD_TOLERANCE, (lo, twin, hi)
        # the record round-trips through the journal
        finished = [e for e in read_journal(lab.journal_path).events if e["event"] == "experiment_finished"]
        back = record_from_dict(finished[-1]["record"])
        assert json.dumps(record_to_dict(back), sort_keys=True) == json.dumps(record_to_dict(rec), sort_keys=True)
        assert back.xrd_phase_fractions == rec.xrd_phase_fractions
    finally:
        lab.close()
    # every write the controller received was journaled first, with its value
    events = read_journal(emu.journal_path).events
    journaled = journaled_furnace_commands(events)
    for name, value in furnace_writes(emu):
        assert any(n == name and abs(v - value) < 0.051 for n, v in journaled), (name, value)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_step_by_step_protocol(emu):
    lab = HardwareLab(emu.lab_file)
    try:
        r = recipe(dwell_time=0.5)
        sid = lab.new_sample(r)
        for p, m in lab.commanded_masses(r):
            assert lab.dispense(sid, p, m) == pytest.approx(m, rel=0.04)
        lab.mill(sid, 0.5)
        lab.press(sid)
        from synthgap.envs.lab.records import Programme

        log = lab.fire([sid], Programme.from_recipe(r))
        assert log.status == "ok" and log.time_s.size > 5 and log.thermocouple_K.max() > 1400
        ch = lab.characterise(sid)
        assert sum(ch.phase_fractions.values()) == pytest.approx(1.0)
        assert lab.telemetry(sid)["status"] == "done"
        with pytest.raises(LabInputError):
            lab.characterise(sid)
    finally:
        lab.close()


def test_recipe_outside_limits_refused_before_anything(emu, tmp_path):
    lab = HardwareLab(lab_file_with(emu, tmp_path / "tight.yaml", "limits", max_temperature_K=1400.0))
    try:
        n = len(emu.robot.requests)
        with pytest.raises(LabInputError, match="dwell_temperature 1473 K is above this lab's limit 1400 K"):
            lab.run_recipe(recipe())
        assert len(emu.robot.requests) == n
    finally:
        lab.close()


def test_dry_run_sends_no_state_changing_command(emu):
    lab = HardwareLab(emu.lab_file, dry_run=True)
    try:
        rec = lab.run_recipe(recipe())
        assert rec.status == "dry_run" and rec.tag == "DRY-RUN"
        assert rec.xrd_phase_fractions == {} and np.isnan(rec.performance)
        commands = [c for c, _ in lab.shield.dry_run_log]
        assert {"setpoint", "ramp_rate", "move_sample", "dose", "mill", "press", "xrd.scan"} <= set(commands)
    finally:
        lab.close()
    assert all(frame[1] == 3 for frame in emu.furnace.requests)  # reads only
    assert furnace_writes(emu) == []
    for station in (emu.mill, emu.press, emu.robot):
        assert station.executed == []
        assert all(f in (b"STATUS?", b"ID?") for f in station.requests)
    assert set(emu.balance.requests) <= {b"S", b"SI"}
    assert list(emu.xrd_inbox.iterdir()) == [] and emu.xrd.answered == []
    events = read_journal(emu.journal_path).events
    assert all(e["dry_run"] for e in events if e["event"] == "command")


def test_port_disappears_mid_firing(emu):
    lab = HardwareLab(emu.lab_file)
    fired = threading.Event()

    def pull_the_plug() -> None:
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            if emu.furnace.thermocouple_K > 1100.0:  # mid-firing
                emu.unplug("furnace", replug_after_s=0.3)
                fired.set()
                return
            time.sleep(0.002)

    thread = threading.Thread(target=pull_the_plug)
    thread.start()
    try:
        with pytest.raises(HardwareLabError, match=r"aborted: ConnectionLost.*furnace commanded to its safe "
                                                   r"temperature 333.15 K"):
            lab.run_recipe(recipe())
    finally:
        thread.join()
        lab.close()
    assert fired.is_set()
    safe = emu.limits["safe_temperature_K"]
    assert emu.furnace.values["target_setpoint"] == pytest.approx(safe - 273.15, abs=0.05)
    events = read_journal(emu.journal_path).events  # parses: no torn or corrupt line
    names = [e["event"] for e in events]
    started = names.index("experiment_started")
    assert "experiment_finished" not in names
    assert names.index("experiment_failed") > started
    assert "reconnect" in names
    assert events[names.index("emergency_stop_done")]["ok"] is True
    journaled = journaled_furnace_commands(events)
    writes = furnace_writes(emu)
    for name, value in writes:
        assert any(n == name and abs(v - value) < 0.051 for n, v in journaled), (name, value)
    setpoints = [w for w in writes if w[0] == "target_setpoint"]
    assert setpoints[-1] == ("target_setpoint", pytest.approx(safe, abs=0.05))  # the stop's, last
    # the readings up to the failure are there too
    assert sum(1 for e in events if e["event"] == "reading" and e["name"] == "temperature") > 3


def test_lab_file_validation(tmp_path, emu):
    data = yaml.safe_load(emu.lab_file.read_text())
    bad = dict(data, lab={"time_scale": -1})
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError, match="lab.time_scale: expected a finite number > 0"):
        load_lab_file(tmp_path / "a.yaml")
    missing = {k: v for k, v in data.items() if k != "robot"}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(missing))
    with pytest.raises(ConfigError, match="robot: missing"):
        load_lab_file(tmp_path / "b.yaml")
    gone = dict(data, mill={"url": str(tmp_path / "no-such-port")})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(gone))
    with pytest.raises(ConfigError, match="mill: cannot open .*no-such-port"):
        HardwareLab(tmp_path / "c.yaml")
    config, settings = load_lab_file(EXAMPLE)
    assert config.limits.max_temperature_K == 1773.15 and settings.system == "BaTiO3"


def test_emulate_lab_cli_writes_a_usable_lab_file(tmp_path):
    top = argparse.ArgumentParser(prog="synthgap")
    add_emulate_parser(top.add_subparsers(dest="command"))
    args = top.parse_args(["emulate", "lab", "--config", str(EXAMPLE), "--workdir", str(tmp_path / "w"),
                           "--lab-file", str(tmp_path / "lab.yaml"), "--time-scale", "50000"])
    stop, out = threading.Event(), io.StringIO()
    thread = threading.Thread(target=run_emulate, args=(args, stop, out))
    thread.start()
    try:
        deadline = time.monotonic() + 10.0
        while "lab-file" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        lines = dict(line.split() for line in out.getvalue().splitlines())
        assert {"furnace", "balance", "mill", "press", "robot", "xrd-inbox", "lab-file"} <= set(lines)
        lab = HardwareLab(lines["lab-file"])
        try:
            assert lab.settings.time_scale == 50000 and 290 < lab.shield.poll() < 320
            assert lab.furnace.setpoint_high_limit == pytest.approx(1773.15)
        finally:
            lab.close()
    finally:
        stop.set()
        thread.join(timeout=10.0)
    assert not thread.is_alive()


def test_watchdog_stays_quiet_while_the_lab_works(emu, tmp_path):
    lab = HardwareLab(lab_file_with(emu, tmp_path / "watchdog.yaml", "lab", watchdog_s=0.3))
    try:
        assert lab.shield._thread is not None  # the watchdog thread runs
        rec = lab.run_recipe(recipe(dwell_time=0.5, milling_time=4.0))
        assert rec.status == "done" and lab.shield.emergency_stops == []
    finally:
        lab.close()
    assert lab.shield._thread is None


def test_a_bug_mid_experiment_still_sends_the_furnace_to_safe(emu, monkeypatch):
    """Not only instrument errors: any exception while the furnace may be hot (a bug in a
    backend step, a corrupt result file) sends the emergency stop before it propagates."""
    lab = HardwareLab(emu.lab_file)
    try:
        real_move = lab.backend.move

        def move(source, destination):
            if source == "furnace":  # unloading after the firing: the furnace is hot
                raise ValueError("a bug in the unload step")
            return real_move(source, destination)

        monkeypatch.setattr(lab.backend, "move", move)
        with pytest.raises(HardwareLabError, match="aborted: ValueError: a bug in the unload step; furnace commanded"):
            lab.run_recipe(recipe(dwell_time=0.5))
        assert lab.shield.latched is not None
    finally:
        lab.close()
    safe = emu.limits["safe_temperature_K"]
    assert emu.furnace.values["target_setpoint"] == pytest.approx(safe - 273.15, abs=0.05)
    names = [e["event"] for e in read_journal(emu.journal_path).events]
    assert names.index("emergency_stop_latched") < names.index("experiment_failed")


def test_the_dwell_cap_is_watched_without_a_poll_watchdog(emu):
    """max_dwell_h is a hard limit: the watchdog thread runs even when the lab file sets no
    watchdog_s (then it checks only the dwell cap); a dry run sends nothing, so needs none."""
    lab = HardwareLab(emu.lab_file)
    try:
        assert lab.settings.watchdog_s is None
        assert lab.shield._thread is not None and lab.shield._thread.is_alive()
    finally:
        lab.close()
    dry = HardwareLab(emu.lab_file, dry_run=True, journal=emu.journal_path.with_name("dry.jsonl"))
    try:
        assert dry.shield._thread is None
    finally:
        dry.close()
