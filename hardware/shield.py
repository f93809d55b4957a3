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
  raise (timeout, lost port, protocol error, ``ImplausibleReading`` from the driver, e.g.
  sensor break) and it is believable (:mod:`~synthgap.hardware.shield_values`: a real
  number, plausible, not fallen faster than the furnace can cool). :meth:`SafetyShield.poll`
  raises (``InstrumentError``) rather than return an unknown temperature.
- Interlock (:mod:`~synthgap.hardware.interlock`): a robot move into or out of a furnace
  needs the furnace believed at or below ``safe_temperature_K``, twice in a row, *and*
  commanded so; anything else is refused and journaled ("interlock: ...").
- Watchdog (:mod:`~synthgap.hardware.watchdog`): if no believed reading is taken for
  ``watchdog_s`` seconds, or a dwell runs past ``max_dwell_h``, the furnace is sent to the
  safe temperature (emergency stop).
- Latched emergency stop (:meth:`SafetyShield.emergency_stop`, called directly, by the
  watchdog or by :meth:`SafetyShield.signal_guard` on SIGINT/SIGTERM): the setpoint goes
  to safe, the stations are stopped, and the stop *latches*: heating and motion commands
  are refused until :meth:`SafetyShield.reset_emergency_stop`, also across a resume
  (:mod:`~synthgap.hardware.latch` says what still passes).
- Dry-run: no state-changing command is sent (reads are); commands are recorded in
  ``dry_run_log`` and the journal. Validation, interlock and latch apply as for real.

Units: temperatures K, ramp rates K/min, dwell h, masses g.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from synthgap.envs.userfiles import short

from .config import SafetyLimits
from .drivers import FurnaceDriver, MillDriver, PressDriver, RobotDriver, StationDriver
from .errors import ImplausibleReading, InstrumentError, SafetyViolation
from .interlock import FURNACE_LOCATION, check_interlock
from .journal import Journal
from .latch import LATCH_EVENT, MAX_OPERATOR_TEXT, RESET_EVENT, check_operator_text, latched_reason, send_stop
from .shield_values import LOCATION, believable_temperature, brief_error, real_number
from .signal_guard import stop_on_signals
from .watchdog import WatchdogThread, watchdog_reason

__all__ = ["SafetyLimits", "SafetyShield"]

log = logging.getLogger(__name__)

_Station = TypeVar("_Station", bound=StationDriver)


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
                 *, robot: RobotDriver | None = None, mill: MillDriver | None = None, press: PressDriver | None = None,
                 dry_run: bool = False, watchdog_s: float | None = None, clock: Callable[[], float] = time.monotonic,
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
        self._watchdog: WatchdogThread | None = None
        if (restored := latched_reason(journal) if journal is not None else None) is not None:
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
                self._record("command_failed", command=command, error=brief_error(exc))
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
        number, why = real_number(value)
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
        self._send("setpoint_high_limit", lambda: setattr(self.furnace, "setpoint_high_limit", lim.max_temperature_K),
                   value=lim.max_temperature_K, while_latched=True)
        self._send("setpoint_low_limit", lambda: setattr(self.furnace, "setpoint_low_limit", lim.min_temperature_K),
                   value=lim.min_temperature_K, while_latched=True)
        raw = self.furnace.ramp_rate
        rate, _ = real_number(raw)
        self._record("reading", name="ramp_rate", value=raw)
        if rate is None or not 0 < rate <= lim.max_ramp_rate_K_per_min:
            self._send("ramp_rate", lambda: setattr(self.furnace, "ramp_rate", lim.max_ramp_rate_K_per_min),
                       value=lim.max_ramp_rate_K_per_min, previous=raw, while_latched=True)
        self.poll()

    # -- reads -------------------------------------------------------------------------------
    def poll(self) -> float:
        """Read the furnace temperature, K: validated, journaled, and (if believed) fed to
        the watchdog.

        Raises:
            InstrumentError: the temperature is unknown: the driver's own error (timeout,
                lost port, ``ImplausibleReading``...) or ``ImplausibleReading`` from the shield
                (:func:`~synthgap.hardware.shield_values.believable_temperature`). Journaled
                as ``reading_unknown``; the watchdog is not fed.
        """
        with self._lock:  # one transaction on the port at a time (the watchdog thread sends too)
            try:
                raw = self.furnace.temperature
            except InstrumentError as exc:
                self._record("reading_unknown", name="temperature", reason=brief_error(exc))
                raise
            except Exception as exc:  # a driver bug is an unknown temperature too
                self._record("reading_unknown", name="temperature", reason=brief_error(exc))
                raise InstrumentError(f"temperature read failed: {brief_error(exc)}") from exc
            now = self.furnace_clock()
            try:
                value = believable_temperature(raw, now, self._believed, self.limits)
            except ImplausibleReading as exc:
                self._record("reading_unknown", name="temperature", raw=raw, reason=exc.reason)
                raise
            self._record("reading", name="temperature", value=value)
            self._believed = (value, now)
            self._last_poll = self.clock()
            self._tripped = False
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
            wire, why = real_number(quantize(prop, value))
        except ValueError as exc:
            raise self._refuse(prop, value, None, f"not representable on the wire: {brief_error(exc)}") from None
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
        """Robot move with interlock: a furnace location (name containing ``FURNACE``) only with the
        furnace believed and commanded at or below the safe temperature (:mod:`~synthgap.hardware.interlock`).

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
            if furnace_side:  # refused (journaled) unless believed and commanded at or below safe
                check_interlock(furnace_side[0], self.limits.safe_temperature_K, poll=self.poll, record=self._record,
                                read_setpoint=lambda: self.furnace.setpoint, refuse=self._refuse)
            self._send("move_sample", lambda: robot.move(source, destination), **moved)

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
            safe, cap = self.limits.safe_temperature_K, self.limits.max_ramp_rate_K_per_min
            actions: list[tuple[str, Callable[[], Any]]] = [  # the cap: a slow segment's rate must not hold it hot
                ("setpoint", lambda: setattr(self.furnace, "setpoint", safe)),
                ("ramp_rate", lambda: setattr(self.furnace, "ramp_rate", cap))]
            for name, station in self.stations.items():
                actions.append((f"{name}.stop", station.stop))
            sent = send_stop(actions, reason, record=self._record, safe_K=safe,
                             dry_run_log=self.dry_run_log if self.dry_run else None)
            return ok and sent

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
        """Within this block SIGINT/SIGTERM unwind the campaign, then the signal is journaled and the
        emergency stop sent (latched): :func:`~synthgap.hardware.signal_guard.stop_on_signals`."""
        with stop_on_signals(self.emergency_stop, self._record):
            yield self

    # -- watchdog ------------------------------------------------------------------------------
    def check_watchdog(self) -> str | None:
        """One watchdog check; trips (emergency stop) and returns the reason, else None. The no-poll
        trip fires once until the next believed reading; its stop latches (:meth:`reset_emergency_stop`)."""
        with self._lock:
            reason = watchdog_reason(self.clock(), dwell_deadline=self._dwell_deadline, last_poll=self._last_poll,
                                     watchdog_s=self.watchdog_s, tripped=self._tripped,
                                     max_dwell_h=self.limits.max_dwell_h)
            if reason is None:
                return None
            self._tripped = True
        self.emergency_stop(reason)
        return reason

    def start_watchdog(self, period_s: float | None = None) -> None:
        """Start the watchdog thread (checks every ``period_s`` s, default watchdog_s/4)."""
        if self._watchdog is not None:
            return
        self._watchdog = WatchdogThread(self.check_watchdog, period_s or (self.watchdog_s or 1.0) / 4)
        self._watchdog.start()

    @property
    def _thread(self) -> threading.Thread | None:
        """The running watchdog thread, or None."""
        return self._watchdog.thread if self._watchdog is not None else None

    def close(self) -> None:
        """Stop the watchdog thread (the drivers are closed by their owner)."""
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None

    def __enter__(self) -> SafetyShield:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
