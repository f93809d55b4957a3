"""SafetyShield: limits before drivers (property test), interlock, watchdog, dry-run."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from synthgap.hardware.config import SafetyLimits
from synthgap.hardware.errors import SafetyViolation
from synthgap.hardware.journal import Journal, read_journal
from synthgap.hardware.shield import SafetyShield

LIMITS = SafetyLimits(max_temperature_K=1473.15, max_ramp_rate_K_per_min=10.0,
                      max_dwell_h=48.0, max_mass_g=50.0, safe_temperature_K=333.15)


class RecordingFurnace:
    """Furnace driver double: records every write, serves a settable temperature."""

    def __init__(self, temperature=300.0, ramp_rate=0.0, on_write=None):
        self.temperature = temperature
        self.ramp_rate_value = ramp_rate
        self.writes: list[tuple[str, float]] = []
        self.on_write = on_write

    def _w(self, name, value):
        if self.on_write:
            self.on_write(name, value)
        self.writes.append((name, value))

    setpoint = property(lambda s: None, lambda s, v: s._w("setpoint", v))
    setpoint_high_limit = property(lambda s: None, lambda s, v: s._w("high", v))
    setpoint_low_limit = property(lambda s: None, lambda s, v: s._w("low", v))

    @property
    def ramp_rate(self):
        return self.ramp_rate_value

    @ramp_rate.setter
    def ramp_rate(self, v):
        self._w("ramp_rate", v)


class RecordingRobot:
    def __init__(self):
        self.moves: list[tuple[str, str]] = []
        self.stops = 0

    def move(self, source, destination):
        self.moves.append((source, destination))

    def stop(self):
        self.stops += 1


def test_property_every_command_reaching_driver_is_within_limits():
    rng = np.random.default_rng(12345)
    n = 100_000
    adversarial = np.array([
        np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 1e308, -1e308, 5e-324,
        LIMITS.max_temperature_K, np.nextafter(LIMITS.max_temperature_K, np.inf),
        LIMITS.min_temperature_K, np.nextafter(LIMITS.min_temperature_K, -np.inf),
        LIMITS.max_ramp_rate_K_per_min, np.nextafter(LIMITS.max_ramp_rate_K_per_min, np.inf),
        LIMITS.max_dwell_h, LIMITS.max_dwell_h * (1 + 1e-15) + 1e-12,
        LIMITS.max_mass_g, np.nextafter(LIMITS.max_mass_g, np.inf), 1e-300,
    ])
    kinds = rng.integers(0, 4, n)  # 0 setpoint, 1 ramp rate, 2 dwell, 3 robot mass
    scale = np.array([3000.0, 30.0, 150.0, 150.0])[kinds]
    values = rng.uniform(-0.5, 1.5, n) * scale
    pick = rng.random(n) < 0.3
    values[pick] = adversarial[rng.integers(0, adversarial.size, pick.sum())]

    furnace, robot = RecordingFurnace(), RecordingRobot()
    shield = SafetyShield(furnace, LIMITS, robot=robot)
    commands = (shield.set_setpoint, shield.set_ramp_rate, shield.start_dwell,
                lambda m: shield.move_sample("RACK_A1", "BALANCE", mass_g=m))
    refused = 0
    t0 = time.perf_counter()
    for kind, value in zip(kinds.tolist(), values.tolist(), strict=True):
        try:
            commands[kind](value)
        except SafetyViolation:
            refused += 1
    for junk in ("1000", None, True, [500.0], np.array([500.0]), complex(500, 0)):
        for cmd in commands:
            if junk is None and cmd is commands[3]:
                continue  # mass_g=None means "not given", which is allowed
            with pytest.raises(SafetyViolation):
                cmd(junk)
    assert time.perf_counter() - t0 < 8.0

    sp = np.array([v for k, v in furnace.writes if k == "setpoint"])
    rate = np.array([v for k, v in furnace.writes if k == "ramp_rate"])
    mass_ok = np.array([0 < m <= LIMITS.max_mass_g for m in values[kinds == 3]])
    assert np.all(np.isfinite(sp)) and np.all((sp >= LIMITS.min_temperature_K)
                                              & (sp <= LIMITS.max_temperature_K))
    assert np.all(np.isfinite(rate)) and np.all((rate > 0)
                                                & (rate <= LIMITS.max_ramp_rate_K_per_min))
    # nothing valid was refused either: counts equal the vectorised expectation
    with np.errstate(invalid="ignore"):
        ok_sp = (values >= LIMITS.min_temperature_K) & (values <= LIMITS.max_temperature_K)
        ok_rate = (values > 0) & (values <= LIMITS.max_ramp_rate_K_per_min)
        ok_dwell = (values > 0) & (values <= LIMITS.max_dwell_h)
    assert sp.size == np.sum(ok_sp & (kinds == 0))
    assert rate.size == np.sum(ok_rate & (kinds == 1))
    assert len(robot.moves) == mass_ok.sum()
    expected_refused = n - sp.size - rate.size - np.sum(ok_dwell & (kinds == 2)) - mass_ok.sum()
    assert refused == expected_refused
    assert refused > 10_000  # the adversarial mix really exercised the refusals


def test_violation_reports_value_and_limit():
    shield = SafetyShield(RecordingFurnace(), LIMITS)
    with pytest.raises(SafetyViolation) as info:
        shield.set_setpoint(2000.0)
    assert info.value.value == 2000.0 and info.value.limit == LIMITS.max_temperature_K
    assert "1473.15" in str(info.value)


def test_connect_programs_limits_and_caps_ramp_rate():
    furnace = RecordingFurnace(ramp_rate=0.0)  # 0 = unlimited on a Eurotherm
    SafetyShield(furnace, LIMITS).connect()
    assert furnace.writes == [("high", 1473.15), ("low", 273.15), ("ramp_rate", 10.0)]
    furnace = RecordingFurnace(ramp_rate=5.0)
    SafetyShield(furnace, LIMITS).connect()
    assert ("ramp_rate", 10.0) not in furnace.writes


def test_journal_written_before_the_command_is_sent(tmp_path):
    path = tmp_path / "journal.jsonl"
    seen = []
    furnace = RecordingFurnace(on_write=lambda name, value: seen.append(
        read_journal(path).events[-1]))
    with Journal(path) as journal:
        shield = SafetyShield(furnace, LIMITS, journal)
        shield.set_setpoint(900.0)
        with pytest.raises(SafetyViolation):
            shield.set_setpoint(float("nan"))
    assert seen[0]["command"] == "setpoint" and seen[0]["value"] == 900.0
    events = read_journal(path).events
    assert [e["event"] for e in events] == ["command", "refused"]


def test_interlock_blocks_unload_of_hot_furnace():
    furnace, robot = RecordingFurnace(temperature=800.0), RecordingRobot()
    shield = SafetyShield(furnace, LIMITS, robot=robot)
    with pytest.raises(SafetyViolation, match="interlock"):
        shield.move_sample("FURNACE1", "RACK_A1")
    assert robot.moves == []
    furnace.temperature = 320.0
    shield.move_sample("FURNACE1", "RACK_A1", mass_g=12.0)
    assert robot.moves == [("FURNACE1", "RACK_A1")]


def test_dry_run_sends_nothing_but_reads():
    furnace, robot = RecordingFurnace(temperature=310.0), RecordingRobot()
    shield = SafetyShield(furnace, LIMITS, robot=robot, dry_run=True)
    shield.connect()
    shield.set_setpoint(1000.0)
    shield.set_ramp_rate(5.0)
    shield.move_sample("FURNACE1", "RACK_A1")
    shield.emergency_stop("test")
    assert furnace.writes == [] and robot.moves == [] and robot.stops == 0
    assert [c for c, _ in shield.dry_run_log] == [
        "setpoint_high_limit", "setpoint_low_limit", "ramp_rate", "setpoint", "ramp_rate",
        "move_sample", "setpoint", "robot.stop"]
    assert shield.poll() == 310.0
    with pytest.raises(SafetyViolation):  # dry run still validates
        shield.set_setpoint(5000.0)


def test_watchdog_trips_on_missing_polls_with_injected_clock():
    now = [0.0]
    furnace, robot = RecordingFurnace(), RecordingRobot()
    shield = SafetyShield(furnace, LIMITS, robot=robot, watchdog_s=5.0, clock=lambda: now[0])
    shield.poll()
    now[0] = 4.0
    assert shield.check_watchdog() is None
    now[0] = 5.5
    assert "no poll" in shield.check_watchdog()
    assert furnace.writes == [("setpoint", LIMITS.safe_temperature_K)] and robot.stops == 1
    assert shield.check_watchdog() is None  # tripped once, not repeatedly
    shield.poll()
    shield.start_dwell(1.0)
    now[0] += 48 * 3600 + 1
    shield.poll()
    assert "dwell" in shield.check_watchdog()


def test_watchdog_thread_really_runs():
    furnace = RecordingFurnace()
    with SafetyShield(furnace, LIMITS, watchdog_s=0.05) as shield:
        shield.poll()
        shield.start_watchdog(period_s=0.01)
        deadline = time.monotonic() + 2.0
        while not furnace.writes and time.monotonic() < deadline:
            time.sleep(0.01)
    assert furnace.writes[0] == ("setpoint", LIMITS.safe_temperature_K)


def test_emergency_stop_survives_failing_driver():
    def boom(name, value):
        raise OSError("bus dead")
    robot = RecordingRobot()
    shield = SafetyShield(RecordingFurnace(on_write=boom), LIMITS, robot=robot)
    assert shield.emergency_stop("test") is False
    assert robot.stops == 1  # the robot is still stopped


def test_signal_guard_emergency_stops_on_sigterm():
    furnace = RecordingFurnace()
    shield = SafetyShield(furnace, LIMITS)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit), shield.signal_guard():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1.0)  # the handler interrupts this
    assert furnace.writes == [("setpoint", LIMITS.safe_temperature_K)]
    assert signal.getsignal(signal.SIGTERM) is before


class SlowFurnace(RecordingFurnace):
    """A controller whose setpoint write takes time; records how many writes are in flight."""

    def __init__(self):
        super().__init__()
        self.in_flight = 0
        self.depth_at_write: list[tuple[float, int]] = []

    def __setattr__(self, name, value):
        if name == "setpoint":
            self.in_flight += 1
            try:
                self.depth_at_write.append((value, self.in_flight))
                time.sleep(0.3)  # a Modbus transaction on the wire
                super().__setattr__(name, value)
            finally:
                self.in_flight -= 1
        else:
            super().__setattr__(name, value)


def test_signal_mid_transaction_stops_after_the_transaction_not_inside_it():
    import threading

    furnace = SlowFurnace()
    shield = SafetyShield(furnace, LIMITS)
    timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM))
    with pytest.raises(SystemExit), shield.signal_guard():
        timer.start()
        shield.set_setpoint(1000.0)  # the signal lands while this write is on the wire
    timer.join()
    # the safe setpoint went out alone, never nested inside the interrupted write
    assert furnace.depth_at_write == [(1000.0, 1), (LIMITS.safe_temperature_K, 1)]
    assert shield.emergency_stops == ["signal SIGTERM"]


class DeadlockDetectingLock:
    """Stands in for the journal's (non re-entrant) lock: a second acquire by the thread
    that holds it is the deadlock the real lock would hang in, so it raises instead."""

    def __init__(self):
        import threading

        self._lock = threading.Lock()

    def __enter__(self):
        if not self._lock.acquire(timeout=1.0):
            raise RuntimeError("deadlock: the journal lock was taken again by the thread holding it")
        return self

    def __exit__(self, *exc):
        self._lock.release()


def test_signal_inside_a_journal_append_neither_deadlocks_nor_loses_the_signal(tmp_path):
    """A signal landing while the main thread holds the journal's lock (mid-append, e.g. in
    fsync) must not make the handler append: that was a deadlock on a slow disk."""
    journal = Journal(tmp_path / "j.jsonl", fsync=False)
    journal._lock = DeadlockDetectingLock()
    furnace = RecordingFurnace()
    shield = SafetyShield(furnace, LIMITS, journal=journal)
    with journal, pytest.raises(SystemExit), shield.signal_guard(), journal._lock:
        signal.raise_signal(signal.SIGTERM)  # the handler runs here, the lock held
        time.sleep(1.0)
    events = read_journal(journal.path).events
    names = [e["event"] for e in events]
    assert names.index("signal") < names.index("command")  # journaled first, then the stop
    assert events[names.index("signal")]["name"] == "SIGTERM"
    assert furnace.writes == [("setpoint", LIMITS.safe_temperature_K)]


def test_second_signal_during_unwinding_is_journaled_not_obeyed(tmp_path):
    """Cleanup in the block and the emergency stop are not cut short by a repeated signal."""
    journal = Journal(tmp_path / "j.jsonl", fsync=False)
    furnace = RecordingFurnace()
    shield = SafetyShield(furnace, LIMITS, journal=journal)
    cleaned = []
    with journal, pytest.raises(KeyboardInterrupt), shield.signal_guard():
        try:
            signal.raise_signal(signal.SIGINT)
            time.sleep(1.0)
        finally:
            signal.raise_signal(signal.SIGTERM)  # the impatient second Ctrl-C / kill
            cleaned.append(True)
    assert cleaned == [True]
    assert furnace.writes == [("setpoint", LIMITS.safe_temperature_K)]
    signals = [e["name"] for e in read_journal(journal.path).events if e["event"] == "signal"]
    assert signals == ["SIGINT", "SIGTERM"]
    assert shield.emergency_stops == ["signal SIGINT"]
