"""Fuzz of the safety shield (issue 10): 100,000 random and adversarial commands against
recording fakes and a real journal.

Ground truth lives in :class:`World`: the furnace's real temperature (it heats and cools at
bounded rates toward the setpoint the controller was last sent), the fault its sensor
line shows (NaN, inf, text, impossible values, sensor break, timeout, lost port, protocol
error, one stale 0 degC frame, an upward spike) and the clock. The fakes check every
driver call against it at the moment it is made:

- every furnace write is a finite float within the limits; while the stop is latched
  only a setpoint at or below safe (and connect's limit and rate-cap writes) arrive;
- no robot move touches a furnace location unless the furnace is really at or below
  the safe temperature, commanded at or below it, and the last reading was not a fault;
- no station, dosing, tare or XRD command arrives while latched, and each is within the
  driver's limits (a dose is never sent as 0);

and after every command: a SafetyViolation was raised exactly when one ``refused`` event
was journaled, for that command. The figures (commands fuzzed, refusals journaled, moves
blocked) are printed (``pytest -s``) and carried in the assertion messages.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from decimal import Decimal
from fractions import Fraction

import hypothesis
import numpy as np
import pytest
from hypothesis import strategies as st

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
from synthgap.hardware.lab import LabShield

LIMITS = SafetyLimits(max_temperature_K=1473.15, max_ramp_rate_K_per_min=10.0, max_dwell_h=48.0,
                      max_mass_g=50.0, safe_temperature_K=333.15)
AMBIENT_K = 298.15  # K: the furnace cannot cool below it
HEATING_K_PER_S = 30.0 / 60.0  # real heating rate of the fake furnace, K/s
COOLING_K_PER_S = 60.0 / 60.0  # real cooling rate, K/s (below the 200 K/min believed maximum)
N_COMMANDS = 100_000
N_DRY_RUN = 20_000
SEED = 20261201
LOCATION = re.compile(r"[A-Z][A-Z0-9_]{0,31}")
PRECURSOR = re.compile(r"[A-Za-z][A-Za-z0-9()._-]{0,31}")
SAMPLE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
FAULTS = ("nan", "inf", "text", "negative", "huge", "timeout", "sensor_break", "lost", "protocol", "array")
ONE_SHOT = ("stale", "spike")  # a single bad frame, then the line is healthy again
HUGE_TEXT = "9" * 100_000

ADVERSARIAL = [
    math.nan, math.inf, -math.inf, 10**400, -(10**400), 2**1024, 10**5000, np.float64("nan"),
    np.float32("inf"), np.int64(500), np.float32(300.0), np.bool_(True), True, False, None, "1000", "nan",
    b"500", [500.0], (500.0,), {}, np.array([500.0]), np.array(500.0), complex(500, 0), Decimal("500"),
    Fraction(500), 1e308, -1e308, 5e-324, 1e-300, 5e-6, 1e-5, 0.0, -0.0, object(), HUGE_TEXT,
]
LOCATIONS = ["FURNACE1", "FURNACE1", "FURNACE2", "MY_FURNACE", "XRD1", "RACK_A1", "BALANCE", "MILL1", "PRESS1",
             "STORAGE", "furnace1", "FURNACE1\n", "FURNACE1\r\nMOVE FURNACE1 XRD1", "", None, 7, "F" * 40,
             "F\u00dcRNACE", b"FURNACE1"]
PRECURSORS = ["BaCO3", "TiO2", "BaO", "BaCO3", "BaCO3\r\nMOVE FURNACE1 XRD1", "Ba CO3", "", None, "x" * 40,
              "BaCO\u2083", 5]
SAMPLE_IDS = ["abcd1234-E0001", "ok.id_1", "../etc/passwd", "", None, "a/b", "x" * 80]
OPERATORS = [("ann", "lab checked"), ("bo", "thermocouple replaced"), ("", "x"), (None, "r"), ("ann\n", "r"),
             ("ann", "y" * 300)]


class World:
    """Ground truth the fakes check every driver call against."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.now = 0.0  # s, the shield's clock and the furnace's
        self.true_K = AMBIENT_K
        self.target_K = AMBIENT_K
        self.rate = 0.0  # controller ramp rate register, K/min (0: unlimited, as shipped)
        self.fault: str | None = None
        self.setpoint_fault: str | None = None
        self.last_mode: str | None = None  # fault of the last temperature read (None: true value)
        self.in_connect = False
        self.shield: LabShield | None = None
        self.violations: list[str] = []
        self.sent: Counter[str] = Counter()

    @property
    def latched(self) -> bool:
        return self.shield is not None and self.shield.latched is not None

    def violation(self, text: str) -> None:
        self.violations.append(f"t={self.now:.0f}s: {text}")

    def advance(self, dt: float) -> None:
        """The real furnace moves toward its target at bounded rates."""
        self.now += dt
        diff = self.target_K - self.true_K
        rate = HEATING_K_PER_S if diff > 0 else COOLING_K_PER_S
        self.true_K = max(AMBIENT_K, self.true_K + math.copysign(min(abs(diff), rate * dt), diff))

    def read_temperature(self) -> object:
        mode = self.fault
        if mode in ONE_SHOT:
            self.fault = None
        self.last_mode = mode
        if mode is None:
            return self.true_K
        value = {"nan": math.nan, "inf": math.inf, "text": "300.0", "negative": -3003.65, "huge": 1e6,
                 "array": np.array([300.0]), "stale": 273.15, "spike": self.true_K + 400.0}.get(mode)
        if value is not None:
            return value
        raise {"timeout": InstrumentTimeout("no reply"), "lost": ConnectionLost("port lost"),
               "protocol": ProtocolError("reply to another request"),
               "sensor_break": ImplausibleReading("process_value", 0x8000, "sensor break (status bit 5)")}[mode]

    def write(self, name: str, value: object) -> None:
        self.sent[f"furnace.{name}"] += 1
        if type(value) is not float or not math.isfinite(value):
            self.violation(f"furnace {name} got {value!r}")
            return
        if name == "setpoint":
            if not LIMITS.min_temperature_K <= value <= LIMITS.max_temperature_K:
                self.violation(f"setpoint {value} out of limits")
            if self.latched and value > LIMITS.safe_temperature_K:
                self.violation(f"setpoint {value} above safe while latched")
            self.target_K = value
        elif name == "ramp_rate":
            if not 0 < value <= LIMITS.max_ramp_rate_K_per_min:
                self.violation(f"ramp rate {value} out of limits")
            # while latched a rate may go out only with the target at or below safe (the stop's
            # own rate cap, so the furnace cools at the cap): then it cannot heat anything
            if self.latched and not self.in_connect and self.target_K > LIMITS.safe_temperature_K:
                self.violation("ramp rate sent while latched with the furnace commanded hot")
            self.rate = value
        else:
            expected = {"setpoint_high_limit": LIMITS.max_temperature_K,
                        "setpoint_low_limit": LIMITS.min_temperature_K}[name]
            if not self.in_connect or value != expected:
                self.violation(f"{name}={value} outside connect")

    def station_call(self, what: str, *values: float, caps: tuple[float, ...] = ()) -> None:
        self.sent[what] += 1
        if self.latched:
            self.violation(f"{what} sent while latched")
        for value, cap in zip(values, caps, strict=True):
            if type(value) is not float or not (math.isfinite(value) and 0 < value <= cap):
                self.violation(f"{what} got {value!r} (cap {cap})")


class FuzzFurnace:
    """Furnace driver fake over the world (the documented driver API, in K)."""

    def __init__(self, world: World) -> None:
        self._w = world

    @property
    def temperature(self) -> object:
        return self._w.read_temperature()

    @property
    def setpoint(self) -> object:
        fault = self._w.setpoint_fault
        if fault == "raise":
            raise InstrumentTimeout("no reply to the setpoint read")
        return math.nan if fault == "nan" else self._w.target_K

    @setpoint.setter
    def setpoint(self, value: float) -> None:
        self._w.write("setpoint", value)

    @property
    def ramp_rate(self) -> float:
        return self._w.rate

    @ramp_rate.setter
    def ramp_rate(self, value: float) -> None:
        self._w.write("ramp_rate", value)

    setpoint_high_limit = property(lambda s: None, lambda s, v: s._w.write("setpoint_high_limit", v))
    setpoint_low_limit = property(lambda s: None, lambda s, v: s._w.write("setpoint_low_limit", v))


class FuzzRobot:
    def __init__(self, world: World) -> None:
        self._w = world

    def move(self, source: object, destination: object) -> None:
        w = self._w
        w.sent["robot.move"] += 1
        if w.latched:
            w.violation("robot moved while latched")
        if not all(isinstance(x, str) and LOCATION.fullmatch(x) for x in (source, destination)):
            w.violation(f"robot got locations {source!r} -> {destination!r}")
            return
        if "FURNACE" in source + destination:
            w.sent["robot.move_furnace"] += 1
            if w.true_K > LIMITS.safe_temperature_K:
                w.violation(f"move {source}->{destination} with the furnace really at {w.true_K:.1f} K")
            if w.target_K > LIMITS.safe_temperature_K:
                w.violation(f"move {source}->{destination} with the furnace commanded to {w.target_K:.1f} K")
            if w.last_mode in FAULTS:
                w.violation(f"move {source}->{destination} after a {w.last_mode} reading")

    def command(self, *words: object) -> str:
        w = self._w
        w.sent["robot.dose"] += 1
        if w.latched:
            w.violation("dose sent while latched")
        verb, name, text = words
        if verb != "DOSE" or not (isinstance(name, str) and PRECURSOR.fullmatch(name)):
            w.violation(f"robot got {words!r}")
        elif not re.fullmatch(r"\d+\.\d{5}", text) or not 0 < float(text) <= LIMITS.max_mass_g:
            w.violation(f"dose sent as {text!r}")
        return ""

    def stop(self) -> None:
        self._w.sent["robot.stop"] += 1


class FuzzStation:
    MAX_RPM, MAX_DURATION_S, MAX_FORCE_KN, MAX_HOLD_S = 1100.0, 86400.0, 150.0, 3600.0

    def __init__(self, world: World) -> None:
        self._w = world

    def mill(self, rpm: float, duration_s: float) -> None:
        self._w.station_call("mill", rpm, duration_s, caps=(self.MAX_RPM, self.MAX_DURATION_S))

    def press(self, force_kN: float, hold_s: float) -> None:
        self._w.station_call("press", force_kN, hold_s, caps=(self.MAX_FORCE_KN, self.MAX_HOLD_S))

    def tare(self) -> float:
        self._w.station_call("balance.tare")
        return 0.0

    def submit(self, sample_id: str) -> str:
        self._w.station_call("xrd.submit")
        if not (isinstance(sample_id, str) and SAMPLE_ID.fullmatch(sample_id)):
            self._w.violation(f"xrd got {sample_id!r}")
        return f"{sample_id}-r"

    def stop(self) -> None:
        self._w.sent["station.stop"] += 1


class CountingJournal(Journal):
    """A real journal that also counts its events by name."""

    def __init__(self, path) -> None:
        super().__init__(path, fsync=False)
        self.counts: Counter[str] = Counter()

    def append(self, event: str, **data: object) -> int:
        self.counts[event] += 1
        return super().append(event, **data)


SCALES = {"setpoint": 2000.0, "ramp_rate": 15.0, "dwell": 60.0, "mass": 60.0, "rpm": 1500.0,
          "duration": 100_000.0, "force": 200.0, "hold": 5000.0}
BOUNDARIES = {
    "setpoint": [LIMITS.max_temperature_K, np.nextafter(LIMITS.max_temperature_K, np.inf), LIMITS.min_temperature_K,
                 np.nextafter(LIMITS.min_temperature_K, -np.inf), LIMITS.safe_temperature_K,
                 np.nextafter(LIMITS.safe_temperature_K, np.inf), AMBIENT_K],
    "ramp_rate": [LIMITS.max_ramp_rate_K_per_min, np.nextafter(LIMITS.max_ramp_rate_K_per_min, np.inf), 0.04, 0.6],
    "dwell": [LIMITS.max_dwell_h, np.nextafter(LIMITS.max_dwell_h, np.inf)],
    "mass": [LIMITS.max_mass_g, np.nextafter(LIMITS.max_mass_g, np.inf), 1e-5, np.nextafter(1e-5, 0), 5e-6,
             49.999996, 50.000004],
    "rpm": [1100.0, np.nextafter(1100.0, np.inf)], "duration": [86400.0, 86400.5],
    "force": [150.0, 150.000001], "hold": [3600.0, 3600.1],
}


class Fuzzer:
    """Draws commands from a seeded generator and checks the invariants after each one."""

    def __init__(self, tmp_path, seed: int, dry_run: bool = False) -> None:
        self.rng = np.random.default_rng(seed)
        self.world = World(self.rng)
        w = self.world
        station = FuzzStation(w)
        self.journal = CountingJournal(tmp_path / "fuzz.jsonl")
        self.shield = LabShield(FuzzFurnace(w), LIMITS, self.journal, robot=FuzzRobot(w), mill=station,
                                press=station, balance=station, xrd=station, dry_run=dry_run, watchdog_s=900.0,
                                clock=lambda: w.now, furnace_clock=lambda: w.now)
        w.shield = self.shield
        self.figures: Counter[str] = Counter()
        self.ops = [  # (weight, name, action)
            (14, "setpoint", lambda: self.shield.set_setpoint(self._setpoint())),
            (7, "ramp_rate", lambda: self.shield.set_ramp_rate(self.value("ramp_rate"))),
            (4, "dwell", lambda: self.shield.start_dwell(self.value("dwell"))),
            (2, "end_dwell", lambda: self.shield.end_dwell()),
            (22, "move", self._move),
            (4, "mill", lambda: self.shield.run_mill(self.value("rpm"), self.value("duration"))),
            (4, "press", lambda: self.shield.press_pellet(self.value("force"), self.value("hold"))),
            (7, "dose", lambda: self.shield.dose(self.pick(PRECURSORS), self.value("mass"))),
            (2, "tare", lambda: self.shield.tare_balance()),
            (3, "xrd", lambda: self.shield.xrd_scan(self.pick(SAMPLE_IDS))),
            (12, "poll", lambda: self.shield.poll()),
            (2, "emergency_stop", lambda: self.shield.emergency_stop(self.pick(["fuzz stop", "watch", 42]))),
            (8, "reset", lambda: self.shield.reset_emergency_stop(*self.pick(OPERATORS))),
            (3, "watchdog", lambda: self.shield.check_watchdog()),
            (1, "connect", self._connect),
        ]
        weights = np.array([op[0] for op in self.ops], dtype=float)
        self.p = weights / weights.sum()

    def pick(self, options: list) -> object:
        return options[int(self.rng.integers(len(options)))]

    def value(self, kind: str) -> object:
        u = self.rng.random()
        if u < 0.25:
            return self.pick(ADVERSARIAL)
        if u < 0.35:
            return float(self.pick(BOUNDARIES[kind]))
        return float(self.rng.uniform(-0.3, 1.3) * SCALES[kind])

    def _setpoint(self) -> object:
        if self.rng.random() < 0.4:  # often cool, so that furnace moves can be allowed
            return float(self.rng.uniform(LIMITS.min_temperature_K, LIMITS.safe_temperature_K))
        return self.value("setpoint")

    def _move(self) -> None:
        mass = None if self.rng.random() < 0.5 else self.value("mass")
        if self.rng.random() < 0.6:  # the lab's own furnace moves: into or out of FURNACE1
            pair = ("FURNACE1", self.pick(["XRD1", "PRESS1", "STORAGE"]))
            source, destination = pair if self.rng.random() < 0.5 else pair[::-1]
        else:
            source, destination = self.pick(LOCATIONS), self.pick(LOCATIONS)
        self.shield.move_sample(source, destination, mass)

    def _connect(self) -> None:
        self.world.in_connect = True
        try:
            self.shield.connect()
        finally:
            self.world.in_connect = False

    def _perturb(self) -> None:
        """Time passes; the sensor line and the setpoint read change their fault now and then."""
        w, rng = self.world, self.rng
        u = rng.random()
        w.advance(0.0 if u < 0.2 else float(rng.uniform(0, 7200)) if u < 0.22 else float(rng.exponential(20.0)))
        if rng.random() < 0.08:
            v = rng.random()
            w.fault = None if v < 0.55 else self.pick(list(ONE_SHOT)) if v < 0.75 else self.pick(list(FAULTS))
        if rng.random() < 0.02:
            w.setpoint_fault = None if rng.random() < 0.8 else self.pick(["nan", "raise"])

    def run(self, n: int) -> Counter[str]:
        w, journal, fig = self.world, self.journal, self.figures
        choices = self.rng.choice(len(self.ops), size=n, p=self.p)
        for i in choices.tolist():
            self._perturb()
            _, name, action = self.ops[i]
            refused_before = journal.counts["refused"]
            was_latched = w.latched
            try:
                action()
            except SafetyViolation as exc:
                fig["refusals raised"] += 1
                assert journal.counts["refused"] == refused_before + 1, f"{name}: refusal not journaled once"
                assert journal.last_event("refused")["command"] == exc.command
                fig["refused while latched"] += "emergency stop latched" in exc.reason
                if exc.command == "move_sample" and exc.reason.startswith("interlock"):
                    fig["furnace moves blocked by the interlock"] += 1
            except InstrumentError:
                assert name in ("poll", "connect"), name  # an unknown temperature, never from a command
                assert journal.counts["refused"] == refused_before
                fig["polls that raised (temperature unknown)"] += 1
            except ValueError as exc:
                assert name == "reset" and "non-empty printable line" in str(exc), (name, exc)
                assert journal.counts["refused"] == refused_before
            else:
                assert journal.counts["refused"] == refused_before, f"{name}: refused journaled, nothing raised"
                if was_latched and name in ("ramp_rate", "dwell", "move", "mill", "press", "dose", "tare", "xrd"):
                    w.violation(f"{name} accepted while latched")
            fig["commands fuzzed"] += 1
            assert not w.violations, w.violations[:5]
        fig["refusals journaled"] = journal.counts["refused"]
        fig["emergency stops latched"] = journal.counts["emergency_stop_latched"]
        fig["resets journaled"] = journal.counts["emergency_stop_reset"]
        fig["furnace moves sent"] = w.sent["robot.move_furnace"]
        fig["furnace writes sent"] = sum(v for k, v in w.sent.items() if k.startswith("furnace."))
        return fig


def _summary(fig: Counter[str]) -> str:
    return "; ".join(f"{k}: {v:,}" for k, v in sorted(fig.items()))


def test_fuzz_shield_100k_commands_nothing_unsafe_reaches_a_driver_and_every_refusal_is_journaled(tmp_path, caplog):
    caplog.set_level(logging.CRITICAL + 1, logger="synthgap.hardware.shield")  # 50k warnings: not the point
    fuzzer = Fuzzer(tmp_path, SEED)
    fig = fuzzer.run(N_COMMANDS)
    fuzzer.journal.close()
    summary = _summary(fig)
    print(f"\nshield fuzz (seed {SEED}): {summary}")
    assert fig["commands fuzzed"] == N_COMMANDS, summary
    assert fig["refusals journaled"] == fig["refusals raised"], summary
    # the mix really exercised each path
    assert fig["refusals raised"] > 30_000, summary
    assert fig["furnace moves blocked by the interlock"] > 2_000, summary
    assert fig["furnace moves sent"] > 200, summary
    assert fig["refused while latched"] > 5_000, summary
    assert fig["emergency stops latched"] > 300 and fig["resets journaled"] > 300, summary
    # the journal reads back: every line valid and short, the refusals all there
    lines = (tmp_path / "fuzz.jsonl").read_bytes().splitlines()
    assert max(len(line) for line in lines) <= MAX_LINE_CHARS, summary
    events = read_journal(tmp_path / "fuzz.jsonl").events
    assert sum(e["event"] == "refused" for e in events) == fig["refusals raised"], summary


def test_fuzz_dry_run_sends_nothing(tmp_path, caplog):
    caplog.set_level(logging.CRITICAL + 1, logger="synthgap.hardware.shield")
    fuzzer = Fuzzer(tmp_path, SEED + 1, dry_run=True)
    fig = fuzzer.run(N_DRY_RUN)
    fuzzer.journal.close()
    summary = _summary(fig)
    print(f"\nshield fuzz, dry run (seed {SEED + 1}): {summary}")
    assert fuzzer.world.sent == Counter(), (fuzzer.world.sent, summary)
    assert fig["refusals journaled"] == fig["refusals raised"] > 5_000, summary


# -- smaller property tests (Hypothesis) ----------------------------------------------------
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.decimals(allow_nan=True),
                    st.fractions(), st.complex_numbers(), st.booleans(), st.none(), st.text(max_size=20),
                    st.binary(max_size=20), st.lists(st.floats(), max_size=3))


@hypothesis.settings(max_examples=300, deadline=None, database=None)
@hypothesis.given(value=NUMBERS, command=st.sampled_from(["setpoint", "ramp_rate", "dwell", "dose"]))
def test_property_any_value_is_sent_within_limits_or_refused_and_journaled(tmp_path_factory, value, command):
    path = tmp_path_factory.mktemp("p") / "j.jsonl"
    world = World(np.random.default_rng(0))
    journal = CountingJournal(path)
    shield = LabShield(FuzzFurnace(world), LIMITS, journal, robot=FuzzRobot(world))
    world.shield = shield
    action = {"setpoint": shield.set_setpoint, "ramp_rate": shield.set_ramp_rate, "dwell": shield.start_dwell,
              "dose": lambda v: shield.dose("BaCO3", v)}[command]
    try:
        action(value)
    except SafetyViolation as exc:
        assert journal.counts["refused"] == 1 and exc.command.split(".")[0] == command
    else:
        assert journal.counts["refused"] == 0
        assert isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    journal.close()
    assert not world.violations, world.violations
    assert all(len(line) <= MAX_LINE_CHARS for line in path.read_bytes().splitlines())


JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
              st.integers(min_value=-(10**500), max_value=10**500), st.text(max_size=50), st.binary(max_size=10)),
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(st.text(max_size=5), children,
                                                                                  max_size=5),
                               st.tuples(children, children)),
    max_leaves=30)


@hypothesis.settings(max_examples=300, deadline=None, database=None)
@hypothesis.given(value=JSONISH)
def test_property_the_journal_writes_any_value_as_one_valid_line(tmp_path_factory, value):
    import json

    path = tmp_path_factory.mktemp("j") / "j.jsonl"
    with Journal(path, fsync=False) as journal:
        journal.append("x", value=value)
    (line,) = path.read_bytes().splitlines()
    json.loads(line, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert read_journal(path).events[0]["event"] == "x"
