"""Safety shield: every state-changing command is checked against the lab limits
*before* it reaches a driver, and journaled before it is sent.

- Violations raise :class:`~synthgap.hardware.errors.SafetyViolation` with the value and
  the limit; nothing is ever clamped. Every refusal is journaled (``refused``), whatever
  the value: NaN, inf, an int of 400 digits, a string, an array, None. A value that is
  not a real finite number is refused before any comparison.
- :meth:`SafetyShield.connect` programs the limits into the controller's setpoint
  high/low registers and makes sure a ramp-rate limit within the cap is active (a rate
  of 0 on a Eurotherm means "step change", i.e. unlimited).
- An unknown temperature counts as hot. A reading is believed only if the read did not
  raise (timeout, lost port, protocol error, :class:`~synthgap.hardware.errors.ImplausibleReading`
  from the driver, e.g. sensor break), it is a real finite number, it lies in
  (0 K, ``max_plausible_temperature_K``], and it did not fall faster than the furnace can
  cool (``max_cooling_rate_K_per_min``, plus ``COOLING_ALLOWANCE_K``) since the last
  believed reading: a stale 0 degC frame a second after 1400 K is not believed.
  :meth:`SafetyShield.poll` raises (an ``InstrumentError``) instead of returning an
  unknown temperature, so no caller can compare NaN with a limit.
- Interlock: a robot move into or out of a furnace location (a name containing
  ``FURNACE``) needs a fresh believed reading at or below ``safe_temperature_K`` *and* the
  controller's target setpoint at or below it (a furnace commanded hot is about to be
  hot; its element is hotter than the thermocouple). The temperature is read
  ``INTERLOCK_READINGS`` times in a row, each believed and at or below safe, so one stale
  frame (the trial's late Modbus reply) cannot open the interlock: the next reading is the
  true one, or it fell too fast to be believed. Anything else is refused and journaled
  ("interlock: ..."). A sensor that keeps reading a plausible cold value cannot be told
  from a cold furnace by software: that needs the furnace's own hardware interlock.
- Watchdog: if no believed reading is taken for ``watchdog_s`` seconds, or a dwell runs
  past ``max_dwell_h``, the furnace is sent to the safe temperature (emergency stop).
- Latched emergency stop (:meth:`SafetyShield.emergency_stop`, called directly, by the
  watchdog or by :meth:`SafetyShield.signal_guard` on SIGINT/SIGTERM): the setpoint goes
  to safe, the stations are stopped, and the stop *latches* (journaled
  ``emergency_stop_latched``). While latched every heating or motion command is refused
  with "emergency stop latched: <reason>": a setpoint above the safe temperature, a ramp
  rate, a dwell, a robot move, milling, pressing, dosing, taring, an XRD request. What
  still passes: reads and polls, a setpoint at or below the safe temperature (it only
  cools; the stop itself sends one), :meth:`end_dwell`, :meth:`connect` (it only narrows
  what the controller accepts and caps the ramp rate), and further emergency stops. Only
  :meth:`SafetyShield.reset_emergency_stop` (operator and reason, journaled
  ``emergency_stop_reset``) clears it; a poll does not. A shield built on a journal whose
  last stop was never reset starts latched (a resumed campaign included).
- Dry-run: no state-changing command is sent (reads are); commands are recorded in
  ``dry_run_log`` and the journal. Validation, interlock and latch apply as for real.

Units: temperatures K, ramp rates K/min, dwell h, masses g.
"""

from __future__ import annotations

import logging
import math
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

from synthgap.envs.userfiles import short

from .config import SafetyLimits
from .drivers import FurnaceDriver, MillDriver, PressDriver, RobotDriver, StationDriver
from .errors import ImplausibleReading, InstrumentError, SafetyViolation
from .journal import Journal

__all__ = ["DOSE_DECIMALS", "DOSE_RESOLUTION_G", "LATCH_EVENT", "LOCATION", "PRECURSOR_NAME", "RESET_EVENT",
           "SAMPLE_ID", "SafetyLimits", "SafetyShield", "check_operator_text", "latched_reason"]

log = logging.getLogger(__name__)

FURNACE_LOCATION = "FURNACE"  # a robot location whose name contains this is inside a furnace
LOCATION = re.compile(r"[A-Z][A-Z0-9_]{0,31}")  # robot location names (the robot driver's rule)
PRECURSOR_NAME = re.compile(r"[A-Za-z][A-Za-z0-9()._-]{0,31}")  # one ASCII word on a station line
SAMPLE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # a file-name-safe sample id
DOSE_DECIMALS = 5  # decimal places of the mass in the robot's DOSE command, g
DOSE_RESOLUTION_G = 10.0**-DOSE_DECIMALS  # smallest dose the DOSE command can express, g
COOLING_ALLOWANCE_K = 10.0  # K allowed on top of the cooling rate: reading noise, wire resolution
INTERLOCK_READINGS = 2  # fresh readings a furnace move needs, all believed and at or below safe
_Station = TypeVar("_Station", bound=StationDriver)
LATCH_EVENT = "emergency_stop_latched"  # journal event: a stop latched (reason)
RESET_EVENT = "emergency_stop_reset"  # journal event: an operator cleared the latch
MAX_OPERATOR_TEXT = 200  # characters of an operator name or reset reason
_ERROR_CHARS = 160  # characters of a driver error quoted in a refusal reason


def _real(value: Any) -> tuple[float | None, str]:
    """``(value as float, "")`` for a real finite number (int, float, numpy scalar), else
    ``(None, why)``: bool, NaN, inf, an int beyond float range, str, None, arrays, ..."""
    if isinstance(value, bool | np.bool_):
        return None, "a bool, not a number"
    if isinstance(value, int | np.integer):
        try:
            number = float(value)
        except OverflowError:
            return None, "an integer too large for a float"
    elif isinstance(value, float | np.floating):
        number = float(value)
    else:
        return None, f"not a real number (a {type(value).__name__})"
    if not math.isfinite(number):
        return None, "not finite"
    return number, ""


def _number(command: str, value: Any) -> float:
    """``value`` as a float if it is a real finite number, else ``SafetyViolation`` (not journaled)."""
    number, why = _real(value)
    if number is None:
        raise SafetyViolation(command, value, None, why)
    return number


def _brief(exc: BaseException) -> str:
    """``Type: message`` of an error, cut for a refusal reason."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _ERROR_CHARS else text[:_ERROR_CHARS] + "..."


def check_operator_text(name: str, value: Any) -> str:
    """A non-empty printable line of at most ``MAX_OPERATOR_TEXT`` characters, else ValueError."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_OPERATOR_TEXT \
            or not value.isprintable():
        raise ValueError(f"{name} must be a non-empty printable line of at most {MAX_OPERATOR_TEXT} "
                         f"characters, got {short(value)}")
    return value.strip()


def latched_reason(journal: Journal) -> tuple[str, int] | None:
    """``(reason, seq)`` of the last emergency stop in ``journal`` that no later reset
    cleared, else None."""
    stop = journal.last_event(LATCH_EVENT)
    reset = journal.last_event(RESET_EVENT)
    if stop is None or (reset is not None and reset.get("seq", 0) > stop.get("seq", 0)):
        return None
    return str(stop.get("reason", "unknown")), int(stop.get("seq", 0))


class SafetyShield:
    """Guard in front of the lab drivers.

    Args:
        furnace: a :class:`~synthgap.hardware.drivers.FurnaceDriver` (K, K/min), e.g.
            :class:`~synthgap.hardware.eurotherm.EurothermController`.
        limits: the lab's safety limits.
        journal: where every command and reading is written before sending (optional).
            If its last emergency stop was never reset, the shield starts latched.
        robot, mill, press: optional station drivers (:mod:`synthgap.hardware.drivers`).
        dry_run: if True, state-changing commands are recorded, never sent.
        watchdog_s: poll timeout in s; ``None`` disables the watchdog thread.
        clock: monotonic clock, s (injectable for tests); the watchdog's clock.
        furnace_clock: the furnace's own clock, s, for the cooling-rate check (default
            ``clock``); a lab running an accelerated emulator passes its scaled lab clock.
    """

    def __init__(self, furnace: FurnaceDriver, limits: SafetyLimits, journal: Journal | None = None,
                 *, robot: RobotDriver | None = None, mill: MillDriver | None = None,
                 press: PressDriver | None = None,
                 dry_run: bool = False, watchdog_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 furnace_clock: Callable[[], float] | None = None) -> None:
        if watchdog_s is not None and not (math.isfinite(watchdog_s) and watchdog_s > 0):
            raise ValueError(f"watchdog_s {watchdog_s!r} must be finite and > 0")
        self.furnace = furnace
        self.limits = limits
        self.journal = journal
        self.robot, self.mill, self.press = robot, mill, press
        self.stations: dict[str, StationDriver] = {
            name: drv for name, drv in (("robot", robot), ("mill", mill), ("press", press))
            if drv is not None}
        self.dry_run = dry_run
        self.watchdog_s = watchdog_s
        self.clock = clock
        self.furnace_clock = furnace_clock or clock
        self.dry_run_log: list[tuple[str, dict[str, Any]]] = []
        self.emergency_stops: list[str] = []
        self._lock = threading.RLock()
        self._last_poll = clock()
        self._believed: tuple[float, float] | None = None  # (K, furnace_clock s) of the last believed reading
        self._dwell_deadline: float | None = None
        self._tripped = False
        self._latched: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        restored = latched_reason(journal) if journal is not None else None
        if restored is not None:
            self._latched = restored[0]
            log.critical("emergency stop still latched from journal seq %d: %s", restored[1], restored[0])
            self._record(LATCH_EVENT, reason=restored[0], restored_from_seq=restored[1])

    # -- journal / sending ---------------------------------------------------------------
    def _record(self, event: str, **data: Any) -> None:
        if self.journal is not None:
            self.journal.append(event, **data)

    def _send(self, command: str, action: Callable[[], Any], *, while_latched: bool = False,
              **data: Any) -> Any:
        """Journal, then (unless dry-run) execute a state-changing command.

        Refused (journaled) while the emergency stop is latched unless ``while_latched``;
        the latch is checked under the lock, so a stop from the watchdog thread cannot slip
        in between the check and the send.
        """
        with self._lock:
            if self._latched is not None and not while_latched:
                raise self._refuse(command, data.get("value", data), None,
                                   f"emergency stop latched: {self._latched}")
            self._record("command", command=command, dry_run=self.dry_run, **data)
            if self.dry_run:
                self.dry_run_log.append((command, data))
                if log.isEnabledFor(logging.INFO):
                    log.info("dry-run: %s %s not sent", command, short(data))
                return None
            try:
                return action()
            except Exception as exc:
                self._record("command_failed", command=command, error=_brief(exc))
                raise

    def _refuse(self, command: str, value: Any, limit: Any, reason: str) -> SafetyViolation:
        try:
            self._record("refused", command=command, value=value, limit=limit, reason=reason)
        except Exception as exc:  # the refusal stands even if the journal cannot say so
            log.critical("refused %s, but journaling the refusal failed: %r", command, exc)
        if log.isEnabledFor(logging.WARNING):  # short() is not free: only when it is logged
            log.warning("refused %s=%s: %s (limit %s)", command, short(value), reason, short(limit))
        return SafetyViolation(command, value, limit, reason)

    def _checked(self, command: str, value: Any) -> float:
        number, why = _real(value)
        if number is None:
            raise self._refuse(command, value, None, why)
        return number

    def _positive(self, command: str, value: Any, cap: float) -> float:
        """A real number in (0, cap], else a journaled refusal."""
        number = self._checked(command, value)
        if not 0 < number <= cap:
            raise self._refuse(command, number, cap, f"must be in (0, {cap:g}]")
        return number

    def _name(self, command: str, value: Any, pattern: re.Pattern[str], what: str) -> str:
        """``value`` if it is a string matching ``pattern`` entirely, else a journaled refusal
        (a newline inside a name would inject a second command into a station line)."""
        if not (isinstance(value, str) and pattern.fullmatch(value)):
            raise self._refuse(command, value, None, f"not {what}")
        return value

    def _check_latch(self, command: str, value: Any) -> None:
        if self._latched is not None:
            raise self._refuse(command, value, None, f"emergency stop latched: {self._latched}")

    @property
    def latched(self) -> str | None:
        """Reason of the latched emergency stop, or None when not latched."""
        return self._latched

    # -- connection ------------------------------------------------------------------------
    def connect(self) -> None:
        """Program the limits into the controller and ensure a capped ramp rate is active.

        Allowed while latched: it only narrows what the controller accepts.
        """
        lim = self.limits
        self._send("setpoint_high_limit", lambda: setattr(
            self.furnace, "setpoint_high_limit", lim.max_temperature_K),
            value=lim.max_temperature_K, while_latched=True)
        self._send("setpoint_low_limit", lambda: setattr(
            self.furnace, "setpoint_low_limit", lim.min_temperature_K),
            value=lim.min_temperature_K, while_latched=True)
        raw = self.furnace.ramp_rate
        rate, _ = _real(raw)
        self._record("reading", name="ramp_rate", value=raw)
        if rate is None or not 0 < rate <= lim.max_ramp_rate_K_per_min:
            self._send("ramp_rate", lambda: setattr(
                self.furnace, "ramp_rate", lim.max_ramp_rate_K_per_min),
                value=lim.max_ramp_rate_K_per_min, previous=raw, while_latched=True)
        self.poll()

    # -- reads -------------------------------------------------------------------------------
    def poll(self) -> float:
        """Read the furnace temperature, K: validated, journaled, and (if believed) fed to
        the watchdog.

        Raises:
            InstrumentError: the temperature is unknown: the driver's own error (timeout,
                lost port, ``ImplausibleReading``...) or ``ImplausibleReading`` from the
                shield (not a finite number, outside (0 K, max_plausible_temperature_K],
                or cooler than the furnace can have cooled since the last believed reading).
                Journaled as ``reading_unknown``; the watchdog is not fed.
        """
        with self._lock:  # one transaction on the port at a time (the watchdog thread sends too)
            try:
                raw = self.furnace.temperature
            except InstrumentError as exc:
                self._record("reading_unknown", name="temperature", reason=_brief(exc))
                raise
            except Exception as exc:  # a driver bug is an unknown temperature too
                self._record("reading_unknown", name="temperature", reason=_brief(exc))
                raise InstrumentError(f"temperature read failed: {_brief(exc)}") from exc
            now = self.furnace_clock()
            try:
                value = self._believable(raw, now)
            except ImplausibleReading as exc:
                self._record("reading_unknown", name="temperature", raw=raw, reason=exc.reason)
                raise
            self._record("reading", name="temperature", value=value)
            self._believed = (value, now)
            self._last_poll = self.clock()
            self._tripped = False
        return value

    def _believable(self, raw: Any, now: float) -> float:
        """``raw`` as a temperature, K, or ``ImplausibleReading`` (see :meth:`poll`)."""
        value, why = _real(raw)
        if value is None:
            raise ImplausibleReading("temperature", short(raw), why)
        lim = self.limits
        if value <= 0.0:
            raise ImplausibleReading("temperature", value, "at or below absolute zero")
        if value > lim.max_plausible_temperature_K:
            raise ImplausibleReading("temperature", value, f"above max_plausible_temperature_K="
                                     f"{lim.max_plausible_temperature_K:g} K")
        if self._believed is not None:
            last, then = self._believed
            elapsed = max(now - then, 0.0)
            floor = last - lim.max_cooling_rate_K_per_min * elapsed / 60.0 - COOLING_ALLOWANCE_K
            if value < floor:
                raise ImplausibleReading(
                    "temperature", value,
                    f"fell {last - value:.1f} K in {elapsed:.3g} s from the last believed {last:.1f} K, "
                    f"faster than max_cooling_rate_K_per_min={lim.max_cooling_rate_K_per_min:g} "
                    "(a stale or zero frame?)")
        return value

    # -- furnace commands ----------------------------------------------------------------------
    def set_setpoint(self, value_K: float) -> float:
        """Set the furnace setpoint, K; must lie in [min_temperature_K, max_temperature_K].

        While latched only a setpoint at or below the safe temperature is sent. Returns the
        setpoint that goes on the wire (the driver's resolution, never above the request), K.
        """
        value = self._checked("setpoint", value_K)
        lim = self.limits
        if value > lim.max_temperature_K:
            raise self._refuse("setpoint", value, lim.max_temperature_K, "above max temperature")
        if value < lim.min_temperature_K:
            raise self._refuse("setpoint", value, lim.min_temperature_K, "below min temperature")
        wire = self._on_the_wire("setpoint", value)
        self._send("setpoint", lambda: setattr(self.furnace, "setpoint", value), value=wire,
                   requested=value, while_latched=wire <= lim.safe_temperature_K)
        return wire

    def set_ramp_rate(self, value_K_per_min: float) -> float:
        """Set the setpoint ramp rate, K/min; must be in (0, max_ramp_rate_K_per_min].

        Returns the rate that goes on the wire (the driver's resolution; never above the
        request, never 0), K/min: a caller timing a ramp must use it.
        """
        value = self._checked("ramp_rate", value_K_per_min)
        cap = self.limits.max_ramp_rate_K_per_min
        if value <= 0:
            raise self._refuse("ramp_rate", value, cap, "must be > 0 (0 means unlimited)")
        if value > cap:
            raise self._refuse("ramp_rate", value, cap, "above max ramp rate")
        wire = self._on_the_wire("ramp_rate", value)
        if not 0 < wire <= cap:
            raise self._refuse("ramp_rate", value, cap, f"goes on the wire as {wire:g} K/min")
        self._send("ramp_rate", lambda: setattr(self.furnace, "ramp_rate", value), value=wire,
                   requested=value)
        return wire

    def _on_the_wire(self, prop: str, value: float) -> float:
        """What the furnace driver will send for ``furnace.<prop> = value`` (API units), from
        its ``quantize`` where it has one, so the journal holds the value the controller got;
        a value the wire cannot carry is a journaled refusal."""
        quantize = getattr(self.furnace, "quantize", None)
        if quantize is None:
            return value
        try:
            wire, why = _real(quantize(prop, value))
        except ValueError as exc:
            raise self._refuse(prop, value, None, f"not representable on the wire: {_brief(exc)}") from None
        if wire is None:
            raise self._refuse(prop, value, None, f"the driver would send {why}")
        return wire

    def start_dwell(self, hours: float) -> None:
        """Declare a dwell of ``hours`` h (<= max_dwell_h); the watchdog enforces the cap."""
        value = self._checked("dwell", hours)
        cap = self.limits.max_dwell_h
        if not 0 < value <= cap:
            raise self._refuse("dwell", value, cap, "dwell must be in (0, max_dwell_h]")
        with self._lock:
            self._check_latch("dwell", value)
            self._record("command", command="dwell", value=value, dry_run=self.dry_run)
            self._dwell_deadline = self.clock() + cap * 3600.0

    def end_dwell(self) -> None:
        """Mark the dwell finished (allowed while latched)."""
        with self._lock:
            self._dwell_deadline = None
            self._record("command", command="end_dwell", dry_run=self.dry_run)

    # -- stations ---------------------------------------------------------------------------
    def move_sample(self, source: str, destination: str, mass_g: float | None = None) -> None:
        """Robot move with interlock: a furnace location (name containing ``FURNACE``) only
        with a believed furnace temperature and a target setpoint at or below the safe
        temperature (see the module docstring).

        ``source`` and ``destination`` are location names (``[A-Z][A-Z0-9_]{0,31}``);
        ``mass_g`` (g), if given, must be in (0, max_mass_g].
        """
        robot = self._station("robot", self.robot)
        moved = {"source": source, "destination": destination, "mass_g": mass_g}
        with self._lock:  # interlock and move as one step: no stop slips in between
            self._check_latch("move_sample", moved)
            if mass_g is not None:
                mass = self._checked("move_sample.mass", mass_g)
                if not 0 < mass <= self.limits.max_mass_g:
                    raise self._refuse("move_sample.mass", mass, self.limits.max_mass_g,
                                       "mass must be in (0, max_mass_g]")
            what = "a location name like 'FURNACE1' (A-Z, 0-9, _; at most 32 characters)"
            self._name("move_sample.source", source, LOCATION, what)
            self._name("move_sample.destination", destination, LOCATION, what)
            if source == destination:
                raise self._refuse("move_sample", moved, None, "source and destination are the same")
            furnace_side = [loc for loc in (source, destination) if FURNACE_LOCATION in loc]
            if furnace_side:
                self._interlock(furnace_side[0])
            self._send("move_sample", lambda: robot.move(source, destination), **moved)

    def _interlock(self, location: str) -> None:
        """Refuse (journaled) unless the furnace is believed at or below safe and commanded so."""
        safe = self.limits.safe_temperature_K
        for _ in range(INTERLOCK_READINGS):
            try:
                temperature = self.poll()
            except InstrumentError as exc:
                raise self._refuse("move_sample", None, safe, f"interlock: {location}: furnace temperature "
                                   f"unknown ({_brief(exc)}), counted as hot") from exc
            if temperature > safe:
                raise self._refuse("move_sample", temperature, safe,
                                   f"interlock: {location} above safe temperature")
        try:
            raw = self.furnace.setpoint
        except Exception as exc:  # any failure to read it: unknown, counted as hot
            self._record("reading_unknown", name="setpoint", reason=_brief(exc))
            raise self._refuse("move_sample", None, safe, f"interlock: {location}: furnace setpoint "
                               f"unknown ({_brief(exc)}), counted as hot") from exc
        setpoint, why = _real(raw)
        if setpoint is None or setpoint <= 0:
            why = why or "at or below absolute zero"
            self._record("reading_unknown", name="setpoint", raw=raw, reason=why)
            raise self._refuse("move_sample", raw, safe,
                               f"interlock: {location}: furnace setpoint unknown ({why}), counted as hot")
        self._record("reading", name="setpoint", value=setpoint)
        if setpoint > safe:
            raise self._refuse("move_sample", setpoint, safe, f"interlock: {location}: furnace "
                               f"commanded to {setpoint:g} K, above the safe temperature")

    @staticmethod
    def _station(name: str, driver: _Station | None) -> _Station:
        if driver is None:
            raise InstrumentError(f"no {name} configured")
        return driver

    def run_mill(self, rpm: float, duration_s: float) -> None:
        """Start the mill: rpm and duration (s) real numbers > 0, within the driver's
        declared ``MAX_RPM`` / ``MAX_DURATION_S`` when it has them."""
        mill = self._station("mill", self.mill)
        rpm = self._positive("mill.rpm", rpm, getattr(mill, "MAX_RPM", math.inf))
        duration = self._positive("mill.duration_s", duration_s, getattr(mill, "MAX_DURATION_S", math.inf))
        self._send("mill", lambda: mill.mill(rpm, duration), rpm=rpm, duration_s=duration)

    def press_pellet(self, force_kN: float, hold_s: float) -> None:
        """Press a pellet: force (kN) and hold (s) real numbers > 0, within the driver's
        declared ``MAX_FORCE_KN`` / ``MAX_HOLD_S`` when it has them."""
        press = self._station("press", self.press)
        force = self._positive("press.force_kN", force_kN, getattr(press, "MAX_FORCE_KN", math.inf))
        hold = self._positive("press.hold_s", hold_s, getattr(press, "MAX_HOLD_S", math.inf))
        self._send("press", lambda: press.press(force, hold), force_kN=force, hold_s=hold)

    # -- emergency ----------------------------------------------------------------------------
    def emergency_stop(self, reason: str = "requested") -> bool:
        """Latch, send the setpoint to the safe temperature, stop the stations.

        Never raises; True if everything was sent. The latch holds until
        :meth:`reset_emergency_stop`; a second stop keeps the first reason.
        """
        reason = reason if isinstance(reason, str) else short(reason)
        log.critical("EMERGENCY STOP: %s", reason)
        with self._lock:
            self.emergency_stops.append(reason)
            self._dwell_deadline = None
            ok = True
            if self._latched is None:
                self._latched = reason[:MAX_OPERATOR_TEXT]
                try:
                    self._record(LATCH_EVENT, reason=self._latched)
                except Exception as exc:  # the stop goes out even if the journal is gone
                    ok = False
                    log.critical("emergency stop: journaling the latch failed: %r", exc)
            safe = self.limits.safe_temperature_K
            actions: list[tuple[str, Callable[[], Any]]] = [
                ("setpoint", lambda: setattr(self.furnace, "setpoint", safe))]
            for name, station in self.stations.items():
                actions.append((f"{name}.stop", station.stop))
            for command, action in actions:
                # not through _send: a journal that fails (disk full) must not keep the stop
                # from going out; the failure is logged and the stop sent all the same
                try:
                    self._record("command", command=command, dry_run=self.dry_run,
                                 reason=f"emergency stop: {reason}",
                                 value=safe if command == "setpoint" else None)
                except Exception as exc:
                    ok = False
                    log.critical("emergency stop: journaling %s failed: %r; sending it anyway", command, exc)
                if self.dry_run:
                    self.dry_run_log.append((command, {"reason": f"emergency stop: {reason}"}))
                    continue
                try:
                    action()
                except Exception as exc:  # keep going: stop everything we can
                    ok = False
                    log.critical("emergency stop: %s failed: %r", command, exc)
                    try:
                        self._record("command_failed", command=command, error=_brief(exc))
                    except Exception:  # noqa: BLE001 - already logged at CRITICAL
                        pass
            return ok

    def reset_emergency_stop(self, operator: str, reason: str) -> bool:
        """Clear a latched emergency stop: journaled ``emergency_stop_reset`` with the
        operator, the reason and the stop it clears. Sends nothing to any instrument.

        Returns:
            True if a latch was cleared; False (nothing journaled) if none was latched.

        Raises:
            ValueError: ``operator`` or ``reason`` is not a non-empty printable line.
        """
        operator = check_operator_text("operator", operator)
        reason = check_operator_text("reason", reason)
        with self._lock:
            if self._latched is None:
                return False
            self._record(RESET_EVENT, operator=operator, reason=reason, cleared=self._latched)
            log.warning("emergency stop (%s) reset by %s: %s", self._latched, operator, reason)
            self._latched = None
            return True

    @contextmanager
    def signal_guard(self) -> Iterator[SafetyShield]:
        """Within this block SIGINT/SIGTERM stop the campaign and then the furnace.

        The handler touches nothing that takes a lock (no port, no journal, no logging):
        it runs in the main thread between two bytecodes of whatever was interrupted,
        possibly inside a Modbus transaction or inside :meth:`Journal.append
        <synthgap.hardware.journal.Journal.append>` holding its lock, and re-entering
        either would merge frames or deadlock. It only notes the signal and raises
        (KeyboardInterrupt for SIGINT, SystemExit for SIGTERM). Once the stack has unwound
        to this block no transaction is in flight: the signal is journaled and the
        emergency stop sent (and latched). Only the first signal raises; later ones
        (during the unwinding or the stop) are journaled, never obeyed, so cleanup and the
        stop are not cut short. SIGKILL remains the hard stop; the journal makes it resumable.
        """
        pending: list[str] = []

        def handler(signum: int, frame: object) -> None:
            pending.append(signal.Signals(signum).name)  # list.append: atomic, lock-free
            if len(pending) > 1:
                return  # already unwinding or stopping: let it finish
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            try:
                if pending:
                    log.critical("%s: campaign unwound, emergency stop", pending[0])
                    for name in pending[:]:
                        self._record("signal", name=name)
                    recorded = len(pending)
                    self.emergency_stop(f"signal {pending[0]}")
                    for name in pending[recorded:]:  # arrived during the stop
                        self._record("signal", name=name, during="emergency stop")
            finally:
                for sig, old in previous.items():
                    signal.signal(sig, old)

    # -- watchdog ------------------------------------------------------------------------------
    def check_watchdog(self) -> str | None:
        """One watchdog check; trips (emergency stop) and returns the reason, else None.

        The no-poll trip fires once until the next believed reading; the stop it sends
        stays latched until :meth:`reset_emergency_stop`.
        """
        with self._lock:
            now = self.clock()
            reason = None
            if self._dwell_deadline is not None and now > self._dwell_deadline:
                reason = f"dwell exceeded max_dwell_h={self.limits.max_dwell_h}"
            elif (self.watchdog_s is not None and not self._tripped
                  and now - self._last_poll > self.watchdog_s):
                reason = f"no poll for {now - self._last_poll:.1f} s (watchdog {self.watchdog_s} s)"
            if reason is None:
                return None
            self._tripped = True
        self.emergency_stop(reason)
        return reason

    def start_watchdog(self, period_s: float | None = None) -> None:
        """Start the watchdog thread (checks every ``period_s`` s, default watchdog_s/4)."""
        if self._thread is not None:
            return
        period = period_s or (self.watchdog_s or 1.0) / 4

        def run() -> None:
            while not self._stop.wait(period):
                self.check_watchdog()

        self._stop.clear()
        self._thread = threading.Thread(target=run, name="safety-watchdog", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the watchdog thread (the drivers are closed by their owner)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def __enter__(self) -> SafetyShield:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
