"""HardwareBackend: the lab's instruments behind the shield, as a :class:`~synthgap.envs.lab.backend.LabBackend`.

It opens every driver of a :class:`~synthgap.hardware.config.LabConfig` (a port that cannot
be opened is a ``ConfigError`` naming it), puts the
:class:`~synthgap.hardware.lab_shield.LabShield` in front of them, and carries out one
step at a time (it is a :class:`~synthgap.envs.lab.backend.SequentialScheduler`): a robot
move between named places, dispense-and-weigh, milling, pressing, firing a programme
(:class:`~synthgap.hardware.programme.ProgrammeRun`), an XRD request, cooling to safe, the
emergency stop (re-opening a lost furnace port). It validates nothing beyond the shield's
limits: the lab front-end (:class:`~synthgap.envs.lab.frontend.Lab`) checks the recipe,
keeps the records and orders the chain. What it adds is the journal of experiments
(``experiment_started``, ``firing``, ``experiment_finished``, ``experiment_failed``) and
:meth:`HardwareBackend.guard`: any failure mid-experiment sends the furnace to its safe
temperature first (:class:`HardwareLabError`).

Units: temperatures K, masses g, times s (lab clock unless stated as wall-clock), mill time h.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from synthgap.envs.chemistry import ChemicalSystem
from synthgap.envs.lab.backend import BackendKind, Dose, SequentialScheduler, immediate
from synthgap.envs.lab.records import (
    Characterisation,
    FurnaceLog,
    FurnaceReadings,
    Programme,
    SampleRecord,
    SampleStatus,
    SampleTruth,
    Segment,
)
from synthgap.envs.lab.validation import LabCaps
from synthgap.envs.userfiles import load_user_file

from .balance import MTSICSBalance
from .config import DeviceConfig, LabConfig, LabSettings
from .drivers import PolledStation
from .errors import ConfigError, InstrumentError
from .eurotherm import EurothermController
from .journal import Journal, append_quietly
from .lab_shield import LabShield
from .programme import ProgrammeRun
from .shield_values import brief_error
from .stations import Mill, Press, RobotArm
from .xrd import XRDFolderDriver, write_json_atomic

__all__ = ["LOCATIONS", "SAMPLE_SUFFIX", "HardwareBackend", "HardwareLabError"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class HardwareLabError(RuntimeError):
    """An experiment was aborted on the hardware (the message says why and what was made safe)."""

SAMPLE_SUFFIX = ".sample.json"  # sidecar next to the XRD request (recipe, masses, trace)
LOCATIONS = {"rack": "VIAL_RACK", "balance": "BALANCE", "mill": "MILL1", "press": "PRESS1",
             "furnace": "FURNACE1", "xrd": "XRD1", "storage": "STORAGE"}
STATION_POLL_S = 0.05  # s wall, STATUS? polling while a station is busy
STATION_TIMEOUT_S = 60.0  # s wall a station may stay BUSY after its run
RECONNECT_PAUSE_S = 0.1  # s wall between attempts to re-open a lost furnace port


def _connect(name: str, url: str, opener: Callable[[], Any]) -> Any:
    try:
        return opener()
    except OSError as exc:  # serial.SerialException is an OSError
        if "://" not in url and not os.path.lexists(url):
            raise ConfigError(f"{name}: cannot open {url}: no such device (is the instrument connected, or "
                              "`synthgap emulate lab` still running? its links go when it exits)") from exc
        raise ConfigError(f"{name}: cannot open {url}: {exc}") from exc


@dataclass(eq=False)
class _LiveRun:
    """A live session on the furnace: the run so far and its load."""

    run: ProgrammeRun
    firing_id: str
    recs: list[SampleRecord]
    atmosphere: str
    started_s: float
    segments: list[Segment] = field(default_factory=list)


def _live_run(handle: object) -> _LiveRun:
    if not isinstance(handle, _LiveRun):
        raise TypeError(f"not a furnace session of this lab: {handle!r}")
    return handle


class HardwareBackend(SequentialScheduler):
    """The instruments of ``config`` behind a :class:`LabShield` (see the module docstring).

    Args:
        config: instruments and limits.
        settings: the lab settings (station settings, polling, time scale).
        journal: the lab's journal (the shield writes every command and reading to it).
        clock: the lab clock, lab s.
        dry_run: the shield sends no state-changing command.
        system: the chemical system the lab makes.
        campaign_id: written with every experiment event.

    Nothing is opened until :meth:`open`.
    """

    kind: BackendKind = "hardware"
    n_furnaces = 1

    def __init__(self, config: LabConfig, settings: LabSettings, journal: Journal, *,
                 clock: Callable[[], float], dry_run: bool, system: ChemicalSystem | None = None,
                 campaign_id: str = "") -> None:
        super().__init__()
        self.config = config
        self.settings = settings
        self.journal = journal
        self.clock = clock
        self.dry_run = dry_run
        self.shield: LabShield | None = None
        self._drivers: list[Any] = []
        self.system = system
        self.campaign_id = campaign_id
        lim = config.limits
        #: what this lab refuses beyond the recipe and programme limits: its safety limits.
        self.caps = LabCaps(max_temperature_K=lim.max_temperature_K,
                            max_ramp_rate_K_per_min=lim.max_ramp_rate_K_per_min, max_dwell_h=lim.max_dwell_h,
                            max_mass_g=lim.max_mass_g)
        self.batch_mass_g = settings.batch_mass_g
        self.ambient_K = settings.ambient_K
        self.finished_status: SampleStatus = "dry_run" if dry_run else "done"
        self.truth: dict[str, SampleTruth] = {}  # instruments have no simulator truth
        self.truth_system = None
        self.firings: list[FurnaceLog] = []

    @property
    def now(self) -> float:
        """Lab clock, s."""
        return self.clock()

    # ------------------------------------------------------------------ connection
    def open(self) -> None:
        """Open every instrument, connect the shield (programs the limits), start the watchdog."""
        c = self.config
        self.furnace = self._open_furnace()
        self.balance = self._open_line(MTSICSBalance, c.balance)
        self.mill_drv = self._open_line(Mill, c.mill)
        self.press_drv = self._open_line(Press, c.press)
        self.robot = self._open_line(RobotArm, c.robot)
        self.xrd = XRDFolderDriver(c.xrd.inbox, c.xrd.outbox, timeout_s=c.xrd.timeout_s,
                                   poll_s=self.settings.xrd_poll_s, sleep=self.idle_sleep)
        self.shield = LabShield(self.furnace, c.limits, self.journal, robot=self.robot, mill=self.mill_drv,
                                press=self.press_drv, balance=self.balance, xrd=self.xrd, dry_run=self.dry_run,
                                watchdog_s=self.settings.watchdog_s, furnace_clock=self.clock)
        self.shield.connect()
        if not self.dry_run:  # always: without watchdog_s it still enforces max_dwell_h
            self.shield.start_watchdog()

    def _open_furnace(self) -> EurothermController:
        f = self.config.furnace
        kwargs: dict[str, Any] = {"slave": f.slave, "decimals": f.decimals}
        if f.baudrate:
            kwargs["baudrate"] = f.baudrate
        if f.timeout_s:
            kwargs["timeout_s"] = f.timeout_s
        drv = _connect("furnace", f.url, lambda: EurothermController.from_url(f.url, **kwargs))
        self._drivers.append(drv)
        return drv

    def _open_line(self, cls: type, dev: DeviceConfig) -> Any:
        kwargs: dict[str, Any] = {}
        if dev.baudrate:
            kwargs["baudrate"] = dev.baudrate
        if dev.timeout_s:
            kwargs["timeout_s"] = dev.timeout_s
        drv = _connect(cls.KIND if hasattr(cls, "KIND") else "balance", dev.url,
                       lambda: cls.from_url(dev.url, **kwargs))
        self._drivers.append(drv)
        return drv

    def close(self) -> None:
        """Stop the watchdog and close every port (idempotent; the journal is the lab's)."""
        if self.shield is not None:
            self.shield.close()
        for drv in self._drivers:
            try:
                drv.close()
            except Exception as exc:  # a dead port must not stop the others from closing
                log.warning("closing %s: %r", type(drv).__name__, exc)
        self._drivers.clear()

    # ------------------------------------------------------------------ experiments (LabBackend)
    def guard(self, sample_id: str, action: Callable[[], T]) -> T:
        """Run ``action`` for experiment ``sample_id``; on any failure (a bug too) send the
        furnace to its safe temperature first, journal ``experiment_failed`` and raise
        :class:`HardwareLabError` saying what was made safe. Ctrl-C / SIGTERM are journaled
        and re-raised (the shield's guard stops once unwound)."""
        try:
            return action()
        except Exception as exc:
            error = brief_error(exc)
            ok = self.emergency_stop(f"experiment {sample_id}: {error}")
            append_quietly(self.journal, "experiment_failed", experiment_id=sample_id, error=error)
            safe = self.config.limits.safe_temperature_K
            state = (f"furnace commanded to its safe temperature {safe:g} K" if ok else
                     "COULD NOT command the furnace to its safe state: check it by hand")
            raise HardwareLabError(f"experiment {sample_id} aborted: {error}; {state}") from exc
        except BaseException as exc:
            append_quietly(self.journal, "experiment_failed", experiment_id=sample_id, error=brief_error(exc))
            raise

    def open_sample(self, rec: SampleRecord) -> None:
        """Journal ``experiment_started`` (id, campaign, recipe)."""
        self.journal.append("experiment_started", experiment_id=rec.sample_id, campaign_id=self.campaign_id,
                            recipe=rec.recipe.to_dict(), dry_run=self.dry_run)

    def close_sample(self, rec: SampleRecord) -> None:
        """Journal ``experiment_finished`` with the whole record (what a resume replays)."""
        from .campaign_state import record_to_dict

        self.journal.append("experiment_finished", experiment_id=rec.sample_id, campaign_id=self.campaign_id,
                            record=record_to_dict(rec))

    @immediate
    def transfer(self, rec: SampleRecord, src: str, dst: str) -> None:
        self.move(src, dst)
        rec.instruments["robot"] = "robot-0"

    @immediate
    def dispense(self, rec: SampleRecord, precursor: str, mass_g: float) -> Dose:
        weighed = self.dispense_and_weigh(precursor, mass_g)
        rec.instruments["balance"] = "balance-0"
        return Dose(weighed)

    @immediate
    def mill(self, rec: SampleRecord, hours: float) -> None:
        self.run_mill(hours)
        rec.instruments["mill"] = "mill-0"

    @immediate
    def press(self, rec: SampleRecord) -> None:
        self.press_pellet()
        rec.instruments["press"] = "press-0"

    @immediate
    def fire(self, recs: Sequence[SampleRecord], programme: Programme, furnace: int | None) -> FurnaceLog:
        ids = tuple(r.sample_id for r in recs)
        firing_id = f"F-{ids[0]}"
        started = self.now
        run = self.run_programme(programme)
        log_ = FurnaceLog(firing_id, 0, ids, programme, "ok", started, self.now, np.asarray(run.time_s),
                          np.asarray(run.setpoint_K), np.asarray(run.thermocouple_K))
        self.firings.append(log_)
        self.journal.append("firing", firing_id=firing_id, samples=list(ids), programme=programme.to_json(),
                            **log_.summary())
        for r in recs:
            r.instruments["furnace"] = "furnace-0"
        return log_

    # ------------------------------------------------------------------ a furnace session
    @immediate
    def open_firing(self, recs: Sequence[SampleRecord], atmosphere: str, furnace: int | None) -> _LiveRun:
        lim = self.config.limits
        run = ProgrammeRun(self.shield, Programme((), atmosphere), clock=self.clock,
                           max_ramp_rate_K_per_min=lim.max_ramp_rate_K_per_min,
                           safe_temperature_K=lim.safe_temperature_K, poll_s=self.settings.poll_s,
                           time_scale=self.settings.time_scale)
        if not self.dry_run:
            run.begin()
        self.journal.append("firing_opened", firing_id=f"F-{recs[0].sample_id}", samples=[r.sample_id for r in recs],
                            atmosphere=atmosphere)
        for r in recs:
            r.instruments["furnace"] = "furnace-0"
        return _LiveRun(run, f"F-{recs[0].sample_id}", list(recs), atmosphere, self.now)

    @immediate
    def continue_firing(self, handle: object, segments: tuple[Segment, ...]) -> FurnaceReadings:
        live = _live_run(handle)
        run, n0 = live.run, len(live.run.time_s)
        if self.dry_run:
            run.rehearse(segments)
        else:
            run.run_segments(segments)
        live.segments.extend(segments)
        return FurnaceReadings(np.asarray(run.time_s[n0:]), np.asarray(run.setpoint_K[n0:]),
                               np.asarray(run.thermocouple_K[n0:]))  # no thermogravimetric balance: NaN

    @immediate
    def close_firing(self, handle: object) -> FurnaceLog:
        live = _live_run(handle)
        if not self.dry_run:
            live.run.finish()
        run = live.run
        ids = tuple(r.sample_id for r in live.recs)
        log_ = FurnaceLog(live.firing_id, 0, ids, Programme(tuple(live.segments), live.atmosphere), "ok",
                          live.started_s, self.now, np.asarray(run.time_s), np.asarray(run.setpoint_K),
                          np.asarray(run.thermocouple_K))
        self.firings.append(log_)
        self.journal.append("firing", firing_id=live.firing_id, samples=list(ids),
                            programme=log_.programme.to_json(), **log_.summary())
        return log_

    @immediate
    def characterise(self, rec: SampleRecord) -> Characterisation:
        firing = next(f for f in reversed(self.firings) if rec.sample_id in f.sample_ids)
        fractions, performance = self.xrd_and_property(rec, firing)
        rec.instruments.update(xrd="xrd-0", property="xrd-0")
        return Characterisation(fractions, performance, "xrd-0", "xrd-0")

    # ------------------------------------------------------------------ waiting
    def wait(self, lab_s: float) -> None:
        """Sleep ``lab_s`` lab seconds (nothing in dry run), feeding the watchdog."""
        if self.dry_run or lab_s <= 0:
            return
        scale = self.settings.time_scale or 1.0
        end = self.clock() + lab_s
        while (left := (end - self.clock()) / scale) > 0:  # wall s
            self.idle_sleep(min(left, self.settings.poll_s))

    def idle_sleep(self, wall_s: float) -> None:
        """Sleep ``wall_s`` wall seconds; with a watchdog, poll the furnace afterwards so an
        idle furnace does not trip it (a trip would stop the mill mid-run)."""
        time.sleep(wall_s)
        if self.settings.watchdog_s is not None:
            self.shield.poll()

    # ------------------------------------------------------------------ stations
    def move(self, src: str, dst: str) -> None:
        """Robot move between two places of :data:`LOCATIONS` (``"rack"``, ``"furnace"``, ...)."""
        self.shield.move_sample(LOCATIONS[src], LOCATIONS[dst])

    def dispense_and_weigh(self, precursor: str, mass_g: float) -> float:
        """Tare, dose ``mass_g`` g of ``precursor``, read the stable weight; returns it, g
        (``mass_g`` in dry run)."""
        self.shield.tare_balance()
        self.shield.dose(precursor, mass_g)
        reading = self.shield.read(f"balance.{precursor}", lambda: self.balance.stable_mass().mass)
        return float(reading) if not self.dry_run else float(mass_g)

    def run_mill(self, hours: float) -> None:
        """Mill for ``hours`` h at ``settings.mill_rpm`` (nothing for 0 h); returns once the mill is idle."""
        if hours > 0:
            self.shield.run_mill(self.settings.mill_rpm, hours * 3600.0)
            self._station_idle("mill", self.mill_drv, hours * 3600.0)

    def press_pellet(self) -> None:
        """Press a pellet at ``settings.press_force_kN`` for ``press_hold_s``; returns once the press is idle."""
        s = self.settings
        self.shield.press_pellet(s.press_force_kN, s.press_hold_s)
        self._station_idle("press", self.press_drv, s.press_hold_s)

    def _station_idle(self, name: str, driver: PolledStation, lab_s: float) -> None:
        self.wait(lab_s)
        deadline = time.monotonic() + STATION_TIMEOUT_S
        while not self.dry_run and self.shield.read(f"{name}.status", driver.status) == "BUSY":
            if time.monotonic() > deadline:
                raise InstrumentError(f"{name} still BUSY after its run")
            time.sleep(STATION_POLL_S)

    # ------------------------------------------------------------------ furnace
    def run_programme(self, programme: Programme) -> ProgrammeRun:
        """Run ``programme`` on the furnace (rehearse it in dry run); returns the run and its trace."""
        lim = self.config.limits
        run = ProgrammeRun(self.shield, programme, clock=self.clock,
                           max_ramp_rate_K_per_min=lim.max_ramp_rate_K_per_min,
                           safe_temperature_K=lim.safe_temperature_K, poll_s=self.settings.poll_s,
                           time_scale=self.settings.time_scale)
        if not self.dry_run:
            run.execute()
        else:
            run.rehearse()
        return run

    def cool_to_safe(self) -> None:
        """Setpoint to ambient at the rate cap, then wait until the furnace reads at or below
        the safe temperature (``InstrumentError`` if it does not within twice the ramp time + 1 h)."""
        lim = self.config.limits
        temperature = self.shield.poll()
        self.shield.set_ramp_rate(lim.max_ramp_rate_K_per_min)
        self.shield.set_setpoint(self.settings.ambient_K)
        lab_s = 2.0 * max(temperature - self.settings.ambient_K, 0.0) * 60.0 / lim.max_ramp_rate_K_per_min + 3600.0
        deadline = self.clock() + lab_s
        while self.shield.poll() > lim.safe_temperature_K:
            if self.clock() > deadline:
                raise InstrumentError(f"furnace still above {lim.safe_temperature_K:g} K after {lab_s:g} lab s")
            time.sleep(self.settings.poll_s)

    # ------------------------------------------------------------------ XRD
    def xrd_and_property(self, rec: SampleRecord, firing: FurnaceLog) -> tuple[dict[str, float], float]:
        """XRD and property of the fired sample ``rec``: drops the sample sidecar
        (recipe, weighed masses, ``firing``'s trace), requests the scan, waits for the result.
        Returns (phase fractions as measured, performance); ``({}, nan)`` in dry run."""
        sid = rec.sample_id
        if self.dry_run:
            self.shield.xrd_scan(sid)
            return {}, math.nan
        write_json_atomic(self.config.xrd.inbox / f"{sid}{SAMPLE_SUFFIX}", {
            "sample_id": sid, "system": self.system.name, "recipe": rec.recipe.to_dict(),
            "weighed_g": rec.weighed_g, "batch_mass_g": self.settings.batch_mass_g,
            "programme": firing.programme.to_json(),
            "trace": {"time_s": firing.time_s.tolist(), "thermocouple_K": firing.thermocouple_K.tolist()}})
        request_id = self.shield.xrd_scan(sid)
        fractions = self.xrd.wait(request_id)
        result_path = self.config.xrd.outbox / f"{request_id}.result.json"
        extra = load_user_file(result_path)  # bounded, like the XRD driver's own read
        performance = math.nan if extra.get("performance") is None else float(extra["performance"])
        self.journal.append("reading", name="xrd", sample_id=sid, request_id=request_id,
                            phase_fractions=fractions, performance=performance)
        return fractions, performance

    # ------------------------------------------------------------------ emergency
    def emergency_stop(self, reason: str) -> bool:
        """Furnace to its safe temperature, stations stopped; re-opens a lost furnace port
        for up to ``reconnect_s``. Never raises; True once the safe setpoint was sent."""
        ok = self.shield.emergency_stop(reason)  # first: a failing journal must not delay it
        append_quietly(self.journal, "emergency_stop", reason=reason)
        deadline = time.monotonic() + self.settings.reconnect_s
        while not ok and not self.dry_run and time.monotonic() < deadline:
            time.sleep(RECONNECT_PAUSE_S)
            try:
                self._reopen_furnace()
            except Exception as exc:
                self.journal.append("reconnect_failed", device="furnace", error=repr(exc))
                continue
            ok = self.shield.emergency_stop(f"{reason} (after re-opening the furnace port)")
        self.journal.append("emergency_stop_done", ok=ok)
        return ok

    def _reopen_furnace(self) -> None:
        old = self.furnace
        try:
            old.close()
        except Exception as exc:
            log.info("closing the lost furnace port: %r", exc)
        if old in self._drivers:
            self._drivers.remove(old)
        self.journal.append("reconnect", device="furnace", url=self.config.furnace.url)
        self.furnace = self._open_furnace()
        self.shield.furnace = self.furnace
