"""SafetyShield: limits before drivers (property test), interlock (unknown = hot), latched
emergency stop, watchdog, dry-run; the journal's handling of values that do not fit."""

from __future__ import annotations

import math
import os
import signal
import time

import numpy as np
import pytest

from synthgap.hardware.config import SafetyLimits
from synthgap.hardware.errors import (
    ConnectionLost,
    ImplausibleReading,
    InstrumentError,
    InstrumentTimeout,
    ProtocolError,
    SafetyViolation,
)
from synthgap.hardware.journal import MAX_LINE_CHARS, Journal, read_journal
from synthgap.hardware.shield import SafetyShield

LIMITS = SafetyLimits(max_temperature_K=1473.15, max_ramp_rate_K_per_min=10.0,
                      max_dwell_h=48.0, max_mass_g=50.0, safe_temperature_K=333.15)


class RecordingFurnace:
    """Furnace driver double: records every write, serves a settable temperature (an
    exception instance as the temperature is raised by the read, like a driver's error;
    a list is served one item per read, the last one repeated) and the last setpoint
    written (initially ``setpoint``)."""

    def __init__(self, temperature=300.0, ramp_rate=0.0, on_write=None, setpoint=298.15):
        self.temperature = temperature
        self.ramp_rate_value = ramp_rate
        self.writes: list[tuple[str, float]] = []
        self.on_write = on_write
        self.target = setpoint

    @property
    def temperature(self):
        value = self._temperature
        if isinstance(value, list):
            value = value.pop(0) if len(value) > 1 else value[0]
        if isinstance(value, BaseException):
            raise value
        return value

    @temperature.setter
    def temperature(self, value):
        self._temperature = value

    def _w(self, name, value):
        if self.on_write:
            self.on_write(name, value)
        self.writes.append((name, value))
        if name == "setpoint":
            self.target = value

    setpoint = property(lambda s: s.target, lambda s, v: s._w("setpoint", v))
    setpoint_high_limit = property(lambda s: None, lambda s, v: s._w("high", v))
    setpoint_low_limit = property(lambda s: None, lambda s, v: s._w("low", v))

    @property
    def ramp_rate(self):
        return self.ramp_rate_value

    @ramp_rate.setter
    def ramp_rate(self, v):
        self._w("ramp_rate", v)


# what an emergency stop writes to the furnace: the safe setpoint, then the rate cap (so a
# slow segment's rate does not hold the furnace hot)
STOP_WRITES = [("setpoint", LIMITS.safe_temperature_K), ("ramp_rate", LIMITS.max_ramp_rate_K_per_min)]


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
    now = [0.0]
    furnace, robot = RecordingFurnace(temperature=800.0), RecordingRobot()
    shield = SafetyShield(furnace, LIMITS, robot=robot, clock=lambda: now[0])
    with pytest.raises(SafetyViolation, match="interlock"):
        shield.move_sample("FURNACE1", "RACK_A1")
    assert robot.moves == []
    now[0] = 3600.0  # an hour later (a fall of 480 K at once would be a stale frame)
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
        "move_sample", "setpoint", "ramp_rate", "robot.stop"]
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
    assert furnace.writes == [("setpoint", LIMITS.safe_temperature_K), ("ramp_rate", LIMITS.max_ramp_rate_K_per_min)]
    assert robot.stops == 1
    assert shield.check_watchdog() is None  # tripped once, not repeatedly
    shield.poll()
    with pytest.raises(SafetyViolation, match="emergency stop latched: no poll"):
        shield.start_dwell(1.0)  # the trip latched; a poll does not clear it
    assert shield.reset_emergency_stop("tester", "watchdog test: lab checked")
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
    assert furnace.writes == STOP_WRITES
    assert signal.getsignal(signal.SIGTERM) is before
    assert shield.latched == "signal SIGTERM"  # the stop from the signal latches too
    with pytest.raises(SafetyViolation, match="emergency stop latched: signal SIGTERM"):
        shield.set_setpoint(1000.0)
    assert furnace.writes == STOP_WRITES


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
    assert furnace.writes == STOP_WRITES


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
    assert furnace.writes == STOP_WRITES
    signals = [e["name"] for e in read_journal(journal.path).events if e["event"] == "signal"]
    assert signals == ["SIGINT", "SIGTERM"]
    assert shield.emergency_stops == ["signal SIGINT"]


# -- unknown temperature counts as hot ------------------------------------------------------
UNKNOWN_READINGS = [
    pytest.param(float("nan"), id="nan"),
    pytest.param(float("inf"), id="inf"),
    pytest.param(-3003.65, id="raw-0x8000-decoded"),
    pytest.param(0.0, id="zero-kelvin"),
    pytest.param(1e6, id="above-plausible"),
    pytest.param("300", id="text"),
    pytest.param(None, id="none"),
    pytest.param(np.array([300.0]), id="array"),
    pytest.param(InstrumentTimeout("no reply"), id="timeout"),
    pytest.param(ImplausibleReading("process_value", 0x8000, "sensor break (status bit 5)"), id="sensor-break"),
    pytest.param(ConnectionLost("port lost"), id="port-lost"),
    pytest.param(ProtocolError("reply to another request"), id="protocol"),
    pytest.param(ZeroDivisionError("driver bug"), id="driver-bug"),
]


@pytest.mark.parametrize("reading", UNKNOWN_READINGS)
def test_unknown_temperature_blocks_a_move_into_or_out_of_the_furnace(tmp_path, reading):
    furnace, robot = RecordingFurnace(temperature=reading), RecordingRobot()
    with Journal(tmp_path / "j.jsonl", fsync=False) as journal:
        shield = SafetyShield(furnace, LIMITS, journal, robot=robot)
        for source, destination in (("FURNACE1", "XRD1"), ("PRESS1", "FURNACE1")):
            with pytest.raises(SafetyViolation, match="interlock: FURNACE1: furnace temperature unknown"):
                shield.move_sample(source, destination)
        shield.move_sample("RACK_A1", "BALANCE")  # away from the furnace: no interlock
    assert robot.moves == [("RACK_A1", "BALANCE")]
    events = read_journal(tmp_path / "j.jsonl").events
    refused = [e for e in events if e["event"] == "refused"]
    assert len(refused) == 2 and all("counted as hot" in e["reason"] for e in refused)
    assert sum(e["event"] == "reading_unknown" for e in events) == 2


@pytest.mark.parametrize("reading", UNKNOWN_READINGS[:8] + UNKNOWN_READINGS[9:10])
def test_poll_raises_rather_than_return_an_unknown_temperature(reading):
    """A caller's ``while shield.poll() > safe`` must not end on NaN; the watchdog is not fed."""
    now = [0.0]
    shield = SafetyShield(RecordingFurnace(temperature=reading), LIMITS, watchdog_s=5.0, clock=lambda: now[0])
    now[0] = 4.0
    with pytest.raises(InstrumentError):
        shield.poll()
    now[0] = 5.5
    assert "no poll" in shield.check_watchdog()


def test_a_stale_zero_frame_after_a_hot_reading_is_not_believed(tmp_path):
    """The trial's case: 0 degC read one second after 1400 K, then the move was sent."""
    now = [0.0]
    furnace, robot = RecordingFurnace(temperature=1400.0), RecordingRobot()
    with Journal(tmp_path / "j.jsonl", fsync=False) as journal:
        shield = SafetyShield(furnace, LIMITS, journal, robot=robot, clock=lambda: now[0])
        assert shield.poll() == 1400.0
        now[0], furnace.temperature = 1.0, 273.15
        with pytest.raises(SafetyViolation, match="furnace temperature unknown.*faster than max_cooling_rate"):
            shield.move_sample("FURNACE1", "XRD1")
        assert robot.moves == []
        # real cooling at 20 K/min is believed: 1400 K -> 333 K takes about 53 min
        for minute in range(1, 60):
            now[0], furnace.temperature = 60.0 * minute, max(1400.0 - 20.0 * minute, 320.0)
            shield.poll()
        shield.move_sample("FURNACE1", "XRD1")
    assert robot.moves == [("FURNACE1", "XRD1")]
    unknown = [e for e in read_journal(tmp_path / "j.jsonl").events if e["event"] == "reading_unknown"]
    assert len(unknown) == 1 and unknown[0]["raw"] == 273.15 and "fell 1126.8 K in 1 s" in unknown[0]["reason"]


def test_one_stale_frame_cannot_open_the_interlock():
    """After a long gap a stale 0 degC frame is within the cooling allowance; the interlock's
    second reading is the true one."""
    now = [0.0]
    furnace, robot = RecordingFurnace(temperature=600.0), RecordingRobot()
    shield = SafetyShield(furnace, LIMITS, robot=robot, clock=lambda: now[0])
    shield.poll()
    now[0] = 600.0  # 10 min: 200 K/min would allow a fall of 2000 K
    furnace.temperature = [273.15, 590.0]
    with pytest.raises(SafetyViolation, match="interlock: FURNACE1 above safe temperature"):
        shield.move_sample("FURNACE1", "XRD1")
    assert robot.moves == []


def test_a_move_is_refused_while_the_furnace_is_commanded_hot():
    furnace, robot = RecordingFurnace(temperature=300.0, setpoint=1273.15), RecordingRobot()
    shield = SafetyShield(furnace, LIMITS, robot=robot)
    with pytest.raises(SafetyViolation, match="commanded to 1273.15 K, above the safe temperature"):
        shield.move_sample("PRESS1", "FURNACE1")
    furnace.target = float("nan")
    with pytest.raises(SafetyViolation, match="furnace setpoint unknown"):
        shield.move_sample("PRESS1", "FURNACE1")
    furnace.target = LIMITS.safe_temperature_K
    shield.move_sample("PRESS1", "FURNACE1")
    assert robot.moves == [("PRESS1", "FURNACE1")]


@pytest.mark.parametrize("location", ["FURNACE1\nMOVE FURNACE1 XRD1", "furnace1", "", None, 7, "X" * 40])
def test_a_location_that_is_not_a_plain_name_is_refused(location):
    furnace, robot = RecordingFurnace(temperature=1400.0), RecordingRobot()
    shield = SafetyShield(furnace, LIMITS, robot=robot)
    with pytest.raises(SafetyViolation, match="not a location name"):
        shield.move_sample("RACK_A1", location)
    assert robot.moves == []


# -- the latched emergency stop -------------------------------------------------------------
class RecordingStation(RecordingRobot):
    MAX_RPM, MAX_DURATION_S, MAX_FORCE_KN, MAX_HOLD_S = 1100.0, 86400.0, 150.0, 3600.0

    def __init__(self):
        super().__init__()
        self.runs: list[tuple] = []

    def mill(self, rpm, duration_s):
        self.runs.append(("mill", rpm, duration_s))

    def press(self, force_kN, hold_s):
        self.runs.append(("press", force_kN, hold_s))


def test_emergency_stop_latches_every_heating_and_motion_command_until_a_journaled_reset(tmp_path):
    furnace, robot, station = RecordingFurnace(temperature=300.0), RecordingRobot(), RecordingStation()
    commands = {
        "setpoint": lambda s: s.set_setpoint(1473.15),
        "ramp_rate": lambda s: s.set_ramp_rate(10.0),
        "dwell": lambda s: s.start_dwell(1.0),
        "move_sample": lambda s: s.move_sample("RACK_A1", "BALANCE"),
        "mill": lambda s: s.run_mill(400.0, 60.0),
        "press": lambda s: s.press_pellet(10.0, 60.0),
    }
    with Journal(tmp_path / "j.jsonl", fsync=False) as journal:
        shield = SafetyShield(furnace, LIMITS, journal, robot=robot, mill=station, press=station)
        assert shield.emergency_stop("operator pressed stop") is True
        for name, command in commands.items():
            with pytest.raises(SafetyViolation, match="emergency stop latched: operator pressed stop") as info:
                command(shield)
            assert info.value.command == name
        assert furnace.writes == STOP_WRITES
        assert robot.moves == [] and station.runs == []
        # what still passes: reads, a setpoint at or below safe, end_dwell, another stop
        assert shield.poll() == 300.0
        shield.set_setpoint(298.15)
        shield.end_dwell()
        assert shield.emergency_stop("again") is True and shield.latched == "operator pressed stop"
        for operator, reason in (("", "x"), ("ann", ""), ("ann\n", "ok"), (None, "ok"), ("ann", "y" * 201)):
            with pytest.raises(ValueError, match="non-empty printable line"):
                shield.reset_emergency_stop(operator, reason)
        assert shield.latched is not None
        assert shield.reset_emergency_stop("ann", "furnace door checked, thermocouple replaced") is True
        assert shield.reset_emergency_stop("ann", "twice") is False
        for command in commands.values():
            command(shield)
    assert ("setpoint", 1473.15) in furnace.writes and ("ramp_rate", 10.0) in furnace.writes
    events = read_journal(tmp_path / "j.jsonl").events
    names = [e["event"] for e in events]
    assert names.count("refused") == len(commands) and names.count("emergency_stop_latched") == 1
    reset = events[names.index("emergency_stop_reset")]
    assert reset["operator"] == "ann" and reset["cleared"] == "operator pressed stop"


def test_a_shield_rebuilt_on_a_journal_with_an_unreset_stop_comes_back_latched(tmp_path):
    path = tmp_path / "j.jsonl"
    furnace = RecordingFurnace()
    with Journal(path, fsync=False) as journal:
        SafetyShield(furnace, LIMITS, journal).emergency_stop("signal SIGTERM")
    with Journal(path, fsync=False) as journal:  # the deploy --resume case
        shield = SafetyShield(furnace, LIMITS, journal)
        assert shield.latched == "signal SIGTERM"
        with pytest.raises(SafetyViolation, match="emergency stop latched: signal SIGTERM"):
            shield.set_setpoint(1000.0)
        shield.reset_emergency_stop("ann", "checked after the SIGTERM")
    with Journal(path, fsync=False) as journal:
        shield = SafetyShield(furnace, LIMITS, journal)
        assert shield.latched is None
        shield.set_setpoint(1000.0)
    assert furnace.writes[-1] == ("setpoint", 1000.0)
    restored = [e for e in read_journal(path).events if e["event"] == "emergency_stop_latched"]
    assert [e.get("restored_from_seq") for e in restored] == [None, restored[0]["seq"]]


# -- every refusal journaled, whatever the value --------------------------------------------
class HugeRepr:
    def __repr__(self):
        return "r" * 5_000_000


UNFIT_VALUES = [
    pytest.param(10**400, id="int-10**400"), pytest.param(-(10**400), id="int--10**400"),
    pytest.param(10**5000, id="int-5001-digits"), pytest.param(float("nan"), id="nan"),
    pytest.param(float("-inf"), id="-inf"), pytest.param(np.float64("nan"), id="np-nan"),
    pytest.param(np.array([500.0]), id="array"), pytest.param(np.zeros(1_000_000), id="big-array"),
    pytest.param("1000", id="str"), pytest.param("9" * 4_000_000, id="4MB-str"), pytest.param(None, id="none"),
    pytest.param(True, id="bool"), pytest.param(np.bool_(True), id="np-bool"), pytest.param(500 + 0j, id="complex"),
    pytest.param([500.0], id="list"), pytest.param(HugeRepr(), id="huge-repr"),
]


@pytest.mark.parametrize("value", UNFIT_VALUES)
def test_a_value_that_does_not_fit_a_float_is_refused_and_journaled_short(tmp_path, value):
    """``set_setpoint(10**400)`` raised OverflowError and journaled nothing."""
    from synthgap.hardware.lab import LabShield

    furnace, robot = RecordingFurnace(), RecordingRobot()
    robot.command = lambda *words: robot.moves.append(words)
    path = tmp_path / "j.jsonl"
    with Journal(path, fsync=False) as journal:
        shield = LabShield(furnace, LIMITS, journal, robot=robot)
        commands = (shield.set_setpoint, shield.set_ramp_rate, shield.start_dwell,
                    lambda v: shield.dose("BaCO3", v), lambda v: shield.dose(v, 1.0),
                    lambda v: shield.move_sample("RACK_A1", v))
        for command in commands:
            with pytest.raises(SafetyViolation) as info:
                command(value)
            assert len(str(info.value)) < 400
    assert furnace.writes == [] and robot.moves == []
    lines = path.read_text().splitlines()
    assert len(lines) == len(commands) and all(len(line) < 2_000 for line in lines)
    assert all(e["event"] == "refused" for e in read_journal(path).events)


def test_dose_refuses_a_mass_the_dose_command_cannot_carry(tmp_path):
    """5e-6 g went out as ``DOSE BaCO3 0.00000``."""
    from synthgap.hardware.lab import LabShield

    sent = []
    robot = RecordingRobot()
    robot.command = lambda *words: sent.append(" ".join(words))
    limits = SafetyLimits(max_temperature_K=1473.15, max_ramp_rate_K_per_min=10.0, max_dwell_h=48.0,
                          max_mass_g=0.123456, safe_temperature_K=333.15)
    with Journal(tmp_path / "j.jsonl", fsync=False) as journal:
        shield = LabShield(RecordingFurnace(), limits, journal, robot=robot)
        for mass in (5e-6, 9.99e-6, np.nextafter(1e-5, 0)):
            with pytest.raises(SafetyViolation, match="below the DOSE command's resolution 1e-05 g"):
                shield.dose("BaCO3", mass)
        with pytest.raises(SafetyViolation, match=r"goes out as 0\.12346 g on the wire, above max_mass_g"):
            shield.dose("BaCO3", 0.123456)
        for name in ("BaCO3\r\nMOVE FURNACE1 XRD1", "Ba CO3", "", "BaCO\u2083", None):
            with pytest.raises(SafetyViolation, match="not a precursor formula"):
                shield.dose(name, 0.1)
        shield.dose("BaCO3", 1e-5)
        shield.dose("TiO2", 0.1234549)
    assert sent == ["DOSE BaCO3 0.00001", "DOSE TiO2 0.12345"]
    events = read_journal(tmp_path / "j.jsonl").events
    assert sum(e["event"] == "refused" for e in events) == 9
    assert [e["wire"] for e in events if e["event"] == "command"] == ["0.00001", "0.12345"]


# -- the journal: any value in, short valid lines out; corrupt lines are a clear error --------
def test_journal_writes_any_value_as_a_short_valid_json_line(tmp_path):
    import json
    from pathlib import Path

    nested: list = []
    cur = nested
    for _ in range(10_000):
        cur.append([])
        cur = cur[0]
    cyclic: list = [1]
    cyclic.append(cyclic)
    values = {"huge_int": 10**400, "wider_than_int64": 2**64, "nan": float("nan"), "ninf": -np.inf,
              "np_int": np.int64(7), "np_nan": np.float32("nan"), "text": "t" * 5_000_000,
              "array": np.zeros(1000), "nested": nested, "cyclic": cyclic, "set": {1, 2},
              "keys": {(1, 2): "tuple key", 3: "int key"}, "bytes": b"\x00\xff", "path": Path("/tmp/x"),
              "many": list(range(100_000)), "obj": HugeRepr()}
    path = tmp_path / "j.jsonl"
    with Journal(path, fsync=False) as journal:
        journal.append("all", **values)
        for name, value in values.items():
            journal.append("one", **{name: value})
    lines = path.read_bytes().splitlines()
    assert len(lines) == 1 + len(values)
    assert all(len(line) <= MAX_LINE_CHARS for line in lines)
    for line in lines:
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    one = {k: v for e in read_journal(path).events[1:] for k, v in e.items() if k in values}
    assert one["huge_int"] == "<integer of about 401 digits>" and one["wider_than_int64"] == str(2**64)
    assert one["nan"] == "nan" and one["ninf"] == "-inf" and one["np_int"] == 7 and one["np_nan"] == "nan"
    assert one["text"].startswith("t" * 200) and one["text"].endswith("(5000000 chars, cut)")
    assert one["path"] == "/tmp/x" and len(one["many"]) == 1001


@pytest.mark.parametrize("bad", [b"[" * 100_000, b"{" * 100_000, b'{"seq": ' + b"9" * 5000 + b"}",
                                 b"\xff\xfe", b'{"event": "no seq"}', b"[1, 2]", b"nan"],
                         ids=["100k-[", "100k-{", "5000-digit-seq", "not-utf8", "no-seq", "array", "nan"])
def test_a_corrupt_journal_line_is_a_value_error_naming_file_and_line(tmp_path, bad):
    """A line of 100,000 ``[`` killed ``deploy --resume`` with RecursionError."""
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"seq": 1, "event": "x"}\n' + bad + b'\n{"seq": 3, "event": "y"}\n')
    with pytest.raises(ValueError, match=f"journal {path}: corrupt line 2: ") as info:
        read_journal(path)
    assert len(str(info.value)) < 500
    with pytest.raises(ValueError, match="corrupt line 2"):
        Journal(path)
    path.write_bytes(b'{"seq": 1, "event": "x"}\n' + bad)  # the same as a torn last write: dropped
    contents = read_journal(path)
    assert [e["seq"] for e in contents.events] == [1] and len(contents.torn_tail) <= 200


def test_a_lab_reopened_on_a_latched_journal_refuses_to_recover_until_an_operator_resets(tmp_path):
    """``deploy --resume`` rebuilds the lab on the journal: a stop never reset comes back latched."""
    from synthgap.hardware.emulators.lab import LabEmulator, LabEmulatorSettings
    from synthgap.hardware.lab import HardwareLab, HardwareLabError

    emu = LabEmulator(tmp_path / "lab", LabEmulatorSettings(time_scale=50_000.0, seed=3))
    emu.start()
    try:
        with HardwareLab(emu.lab_file) as lab:
            assert lab.emergency_stop("operator pressed stop") is True
        with HardwareLab(emu.lab_file) as lab:
            assert lab.shield.latched == "operator pressed stop"
            frames = len(emu.furnace.requests)
            with pytest.raises(HardwareLabError, match=r"emergency stop \(operator pressed stop\) is still latched"):
                lab.recover("resume after an interrupted campaign")
            assert len(emu.furnace.requests) == frames  # nothing sent, not even a read
            assert lab.reset_emergency_stop("ann", "lab checked after the stop")
            lab.recover("resume after an interrupted campaign")
    finally:
        emu.stop()
    names = [e["event"] for e in read_journal(emu.journal_path).events]
    assert names.count("emergency_stop_latched") == 2 and names.count("recover_refused") == 1
    assert names.index("emergency_stop_reset") < len(names) - 1 - names[::-1].index("recover")


class QuantizingFurnace(RecordingFurnace):
    """A furnace driver double with the Eurotherm driver's ``quantize``: values go on the
    wire rounded down to 0.1 (K or K/min), and a non-zero rate that would go out as 0 is
    refused with ValueError, as :meth:`EurothermController.quantize` does."""

    def quantize(self, prop, value):
        wire = math.floor(value * 10 + 1e-6) / 10
        if prop == "ramp_rate" and value > 0 and wire == 0:
            raise ValueError(f"ramp_rate: {value} K/min goes out as raw 0 (no limit)")
        return wire


def test_journal_holds_the_value_on_the_wire_and_a_rate_the_wire_cannot_carry_is_refused(tmp_path):
    furnace = QuantizingFurnace()
    with Journal(tmp_path / "j.jsonl", fsync=False) as journal:
        shield = SafetyShield(furnace, LIMITS, journal)
        assert shield.set_ramp_rate(1.96) == pytest.approx(1.9)
        assert shield.set_setpoint(1073.19) == pytest.approx(1073.1)
        with pytest.raises(SafetyViolation, match="not representable on the wire"):
            shield.set_ramp_rate(0.04)
    assert furnace.writes == [("ramp_rate", 1.96), ("setpoint", 1073.19)]  # the driver rounds
    events = read_journal(tmp_path / "j.jsonl").events
    sent = [(e["command"], e["value"], e["requested"]) for e in events if e["event"] == "command"]
    assert sent == [("ramp_rate", pytest.approx(1.9), 1.96), ("setpoint", pytest.approx(1073.1), 1073.19)]
    refused = [e for e in events if e["event"] == "refused"]
    assert len(refused) == 1 and refused[0]["command"] == "ramp_rate" and refused[0]["value"] == 0.04


class BrokenJournal(Journal):
    """A journal whose disk is full after ``ok`` appends."""

    def __init__(self, path, ok):
        super().__init__(path, fsync=False)
        self.ok = ok

    def append(self, event, **data):
        if self.ok <= 0:
            raise OSError(28, "No space left on device")
        self.ok -= 1
        return super().append(event, **data)


def test_emergency_stop_goes_out_when_the_journal_fails(tmp_path):
    furnace, robot = RecordingFurnace(temperature=1200.0), RecordingRobot()
    journal = BrokenJournal(tmp_path / "j.jsonl", ok=0)
    shield = SafetyShield(furnace, LIMITS, journal, robot=robot)
    assert shield.emergency_stop("test") is False  # not everything was journaled
    journal.close()
    assert furnace.writes == STOP_WRITES and robot.stops == 1
    assert shield.latched == "test"
    with pytest.raises(SafetyViolation):
        shield.set_setpoint(900.0)  # latched, even though the journal could not say so


def test_signal_stop_goes_out_when_the_journal_fails():
    """The signal guard journals the signal, then stops; a failing journal (disk full) is
    logged and the stop still runs."""
    from synthgap.hardware.signal_guard import stop_on_signals

    stops: list[str] = []

    def record(event, **data):
        raise OSError(28, "No space left on device")

    with pytest.raises(SystemExit), stop_on_signals(stops.append, record):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1.0)  # the handler raises here
    assert stops == ["signal SIGTERM"]
