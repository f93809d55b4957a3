"""Safety shield: every state-changing command is checked against the lab limits
*before* it reaches a driver, and journaled before it is sent.

- Violations raise :class:`~synthgap.hardware.errors.SafetyViolation` with the value and
  the limit; nothing is ever clamped.
- :meth:`SafetyShield.connect` programs the limits into the controller's setpoint
  high/low registers and makes sure a ramp-rate limit within the cap is active (a rate
  of 0 on a Eurotherm means "step change", i.e. unlimited).
- Interlock: no robot move into or out of a furnace location while the furnace reads
  above ``safe_temperature_K``.
- Watchdog: if :meth:`SafetyShield.poll` is not called for ``watchdog_s`` seconds, or a
  dwell runs past ``max_dwell_h``, the furnace is sent to the safe temperature.
- :meth:`SafetyShield.emergency_stop`: setpoint to safe, stations stopped, all logged;
  :meth:`SafetyShield.signal_guard` hooks it to SIGINT/SIGTERM.
- Dry-run: no state-changing command is sent (reads are); commands are recorded in
  ``dry_run_log`` and the journal.

Units: temperatures K, ramp rates K/min, dwell h, masses g.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .config import SafetyLimits
from .errors import InstrumentError, SafetyViolation
from .journal import Journal

__all__ = ["SafetyLimits", "SafetyShield"]

log = logging.getLogger(__name__)

FURNACE_LOCATION_PREFIX = "FURNACE"  # robot locations inside a furnace start with this


def _number(command: str, value: Any) -> float:
    """Accept real finite numbers only (no bool, str, NaN, inf)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            import numpy as np  # numpy scalars are fine, arrays are not
            if isinstance(value, np.integer | np.floating):
                value = float(value)
            else:
                raise TypeError
        except TypeError:
            raise SafetyViolation(command, value, None, "not a real number") from None
    value = float(value)
    if not math.isfinite(value):
        raise SafetyViolation(command, value, None, "not finite")
    return value


class SafetyShield:
    """Guard in front of the lab drivers.

    Args:
        furnace: furnace driver with ``temperature``, ``setpoint``, ``ramp_rate``,
            ``setpoint_high_limit``, ``setpoint_low_limit`` (K, K/min), e.g.
            :class:`~synthgap.hardware.eurotherm.EurothermController`.
        limits: the lab's safety limits.
        journal: where every command and reading is written before sending (optional).
        robot, mill, press: optional station drivers.
        dry_run: if True, state-changing commands are recorded, never sent.
        watchdog_s: poll timeout in s; ``None`` disables the watchdog thread.
        clock: monotonic clock, s (injectable for tests).
    """

    def __init__(self, furnace: Any, limits: SafetyLimits, journal: Journal | None = None,
                 *, robot: Any = None, mill: Any = None, press: Any = None,
                 dry_run: bool = False, watchdog_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if watchdog_s is not None and not (math.isfinite(watchdog_s) and watchdog_s > 0):
            raise ValueError(f"watchdog_s {watchdog_s!r} must be finite and > 0")
        self.furnace = furnace
        self.limits = limits
        self.journal = journal
        self.stations: dict[str, Any] = {
            name: drv for name, drv in (("robot", robot), ("mill", mill), ("press", press))
            if drv is not None}
        self.dry_run = dry_run
        self.watchdog_s = watchdog_s
        self.clock = clock
        self.dry_run_log: list[tuple[str, dict[str, Any]]] = []
        self.emergency_stops: list[str] = []
        self._lock = threading.RLock()
        self._last_poll = clock()
        self._dwell_deadline: float | None = None
        self._tripped = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- journal / sending ---------------------------------------------------------------
    def _record(self, event: str, **data: Any) -> None:
        if self.journal is not None:
            self.journal.append(event, **data)

    def _send(self, command: str, action: Callable[[], Any], **data: Any) -> Any:
        """Journal, then (unless dry-run) execute a state-changing command."""
        with self._lock:
            self._record("command", command=command, dry_run=self.dry_run, **data)
            if self.dry_run:
                self.dry_run_log.append((command, data))
                log.info("dry-run: %s %s not sent", command, data)
                return None
            try:
                return action()
            except Exception as exc:
                self._record("command_failed", command=command, error=repr(exc))
                raise

    def _refuse(self, command: str, value: Any, limit: Any, reason: str) -> SafetyViolation:
        self._record("refused", command=command, value=value, limit=limit, reason=reason)
        log.warning("refused %s=%r: %s (limit %r)", command, value, reason, limit)
        return SafetyViolation(command, value, limit, reason)

    def _checked(self, command: str, value: Any) -> float:
        try:
            return _number(command, value)
        except SafetyViolation as exc:
            raise self._refuse(command, value, None, exc.reason) from None

    # -- connection ------------------------------------------------------------------------
    def connect(self) -> None:
        """Program the limits into the controller and ensure a capped ramp rate is active."""
        lim = self.limits
        self._send("setpoint_high_limit", lambda: setattr(
            self.furnace, "setpoint_high_limit", lim.max_temperature_K),
            value=lim.max_temperature_K)
        self._send("setpoint_low_limit", lambda: setattr(
            self.furnace, "setpoint_low_limit", lim.min_temperature_K),
            value=lim.min_temperature_K)
        rate = self.furnace.ramp_rate
        self._record("reading", name="ramp_rate", value=rate)
        if not (0 < rate <= lim.max_ramp_rate_K_per_min):
            self._send("ramp_rate", lambda: setattr(
                self.furnace, "ramp_rate", lim.max_ramp_rate_K_per_min),
                value=lim.max_ramp_rate_K_per_min, previous=rate)
        self.poll()

    # -- reads -------------------------------------------------------------------------------
    def poll(self) -> float:
        """Read the furnace temperature (K), journal it and feed the watchdog."""
        with self._lock:  # one transaction on the port at a time (the watchdog thread sends too)
            value = float(self.furnace.temperature)
            self._record("reading", name="temperature", value=value)
            self._last_poll = self.clock()
            self._tripped = False
        return value

    # -- furnace commands ----------------------------------------------------------------------
    def set_setpoint(self, value_K: float) -> None:
        """Set the furnace setpoint, K; must lie in [min_temperature_K, max_temperature_K]."""
        value = self._checked("setpoint", value_K)
        lim = self.limits
        if value > lim.max_temperature_K:
            raise self._refuse("setpoint", value, lim.max_temperature_K, "above max temperature")
        if value < lim.min_temperature_K:
            raise self._refuse("setpoint", value, lim.min_temperature_K, "below min temperature")
        self._send("setpoint", lambda: setattr(self.furnace, "setpoint", value), value=value)

    def set_ramp_rate(self, value_K_per_min: float) -> None:
        """Set the setpoint ramp rate, K/min; must be in (0, max_ramp_rate_K_per_min]."""
        value = self._checked("ramp_rate", value_K_per_min)
        cap = self.limits.max_ramp_rate_K_per_min
        if value <= 0:
            raise self._refuse("ramp_rate", value, cap, "must be > 0 (0 means unlimited)")
        if value > cap:
            raise self._refuse("ramp_rate", value, cap, "above max ramp rate")
        self._send("ramp_rate", lambda: setattr(self.furnace, "ramp_rate", value), value=value)

    def start_dwell(self, hours: float) -> None:
        """Declare a dwell of ``hours`` h (<= max_dwell_h); the watchdog enforces the cap."""
        value = self._checked("dwell", hours)
        cap = self.limits.max_dwell_h
        if not 0 < value <= cap:
            raise self._refuse("dwell", value, cap, "dwell must be in (0, max_dwell_h]")
        with self._lock:
            self._record("command", command="dwell", value=value, dry_run=self.dry_run)
            self._dwell_deadline = self.clock() + cap * 3600.0

    def end_dwell(self) -> None:
        """Mark the dwell finished."""
        with self._lock:
            self._dwell_deadline = None
            self._record("command", command="end_dwell", dry_run=self.dry_run)

    # -- stations ---------------------------------------------------------------------------
    def move_sample(self, source: str, destination: str, mass_g: float | None = None) -> None:
        """Robot move with interlock: furnace locations only at or below the safe temperature.

        ``mass_g`` (g), if given, must be in (0, max_mass_g].
        """
        robot = self._station("robot")
        if mass_g is not None:
            mass = self._checked("move_sample.mass", mass_g)
            if not 0 < mass <= self.limits.max_mass_g:
                raise self._refuse("move_sample.mass", mass, self.limits.max_mass_g,
                                   "mass must be in (0, max_mass_g]")
        furnace_side = [loc for loc in (source, destination)
                        if isinstance(loc, str) and loc.startswith(FURNACE_LOCATION_PREFIX)]
        if furnace_side:
            temperature = self.poll()
            if temperature > self.limits.safe_temperature_K:
                raise self._refuse("move_sample", temperature, self.limits.safe_temperature_K,
                                   f"interlock: {furnace_side[0]} above safe temperature")
        self._send("move_sample", lambda: robot.move(source, destination),
                   source=source, destination=destination, mass_g=mass_g)

    def _station(self, name: str) -> Any:
        if name not in self.stations:
            raise InstrumentError(f"no {name} configured")
        return self.stations[name]

    def run_mill(self, rpm: float, duration_s: float) -> None:
        """Start the mill (driver validates rpm and duration)."""
        mill = self._station("mill")
        self._send("mill", lambda: mill.mill(rpm, duration_s), rpm=rpm,
                   duration_s=duration_s)

    def press_pellet(self, force_kN: float, hold_s: float) -> None:
        """Press a pellet (driver validates force and hold time)."""
        press = self._station("press")
        self._send("press", lambda: press.press(force_kN, hold_s), force_kN=force_kN,
                   hold_s=hold_s)

    # -- emergency ----------------------------------------------------------------------------
    def emergency_stop(self, reason: str = "requested") -> bool:
        """Setpoint to the safe temperature, stop stations. Never raises; True if all sent."""
        log.critical("EMERGENCY STOP: %s", reason)
        with self._lock:
            self.emergency_stops.append(reason)
            self._dwell_deadline = None
            ok = True
            safe = self.limits.safe_temperature_K
            actions: list[tuple[str, Callable[[], Any]]] = [
                ("setpoint", lambda: setattr(self.furnace, "setpoint", safe))]
            for name, station in self.stations.items():
                actions.append((f"{name}.stop", station.stop))
            for command, action in actions:
                try:
                    self._send(command, action, reason=f"emergency stop: {reason}",
                               value=safe if command == "setpoint" else None)
                except Exception as exc:  # keep going: stop everything we can
                    ok = False
                    log.critical("emergency stop: %s failed: %r", command, exc)
            return ok

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
        emergency stop sent. Only the first signal raises; later ones (during the
        unwinding or the stop) are journaled, never obeyed, so cleanup and the stop are
        not cut short. SIGKILL remains the hard stop; the journal makes it resumable.
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
        """One watchdog check; trips (emergency stop) and returns the reason, else None."""
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
