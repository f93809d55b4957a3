"""HardwareLab: the :class:`~synthgap.envs.lab.protocol.Lab` interface on the real drivers.

One sample at a time runs the same chain as the twin (:class:`~synthgap.envs.lab.simlab.SimLab`):

1. robot: vial rack -> balance; for each precursor (masses from
   :func:`~synthgap.envs.chemistry.stoichiometry.precursor_masses`, as the twin weighs them):
   tare, dose, stable weight;
2. robot: balance -> mill; mill (``milling_time`` h); robot: mill -> press; press;
   robot: press -> furnace (interlock: furnace at or below the safe temperature);
3. fire the recipe's programme on the controller: rate limit = ``ramp_rate``, setpoint =
   dwell temperature; hold for ``dwell_time``; rate limit = ``cooling_rate``, setpoint =
   ambient; wait until the thermocouple reads at or below the safe temperature. The
   process value is polled every ``poll_s`` and logged (the thermocouple trace);
4. robot: furnace -> XRD; XRD via the folder driver; the result file carries the property
   measurement (``performance``); robot: XRD -> storage.

Every state-changing command goes through the :class:`LabShield` (a
:class:`~synthgap.hardware.shield.SafetyShield` that also knows the dosing head, the
balance tare and the XRD scan), which journals it *before* sending. Readings are
journaled before they are used. The lab adds experiment events to the same journal:
``experiment_started`` (id, recipe), ``experiment_finished`` (id, the whole record),
``experiment_failed`` (id, error), ``emergency_stop``; :func:`finished_records` reads
them back for a resume.

Lab file: the :class:`~synthgap.hardware.config.LabConfig` YAML plus an optional ``lab``
section (:class:`LabSettings`), e.g.::

    lab: {system: BaTiO3, time_scale: 20000, poll_s: 0.005}

``now`` is wall-clock seconds since the lab was opened, times ``time_scale`` when the
section sets one (an emulated furnace running faster than real time).

Dry run (``dry_run=True``): the shield sends no state-changing command (reads still
happen); nothing is fired, XRD is not requested, and every record comes back with
``status="dry_run"``, empty XRD and NaN performance.

Units: temperatures K, masses g, times s (lab clock), rates K/min, mill time h.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from synthgap.envs.chemistry import Recipe, load_system
from synthgap.envs.chemistry.discretisation import is_dwell
from synthgap.envs.chemistry.stoichiometry import precursor_masses
from synthgap.envs.lab.protocol import LabInputError
from synthgap.envs.lab.records import Characterisation, FurnaceLog, Programme, SampleRecord, Segment, sample_status
from synthgap.envs.lab.validation import (
    LabCaps,
    check_dose,
    check_load,
    check_milling,
    check_programme,
    check_recipe,
)
from synthgap.envs.userfiles import short

from .balance import MTSICSBalance
from .config import LabConfig, read_yaml
from .drivers import BalanceDriver, DosingRobot, PolledStation, XRDDriver
from .errors import ConfigError, InstrumentError, SafetyViolation
from .eurotherm import EurothermController
from .journal import Journal, read_journal
from .shield import DOSE_DECIMALS, DOSE_RESOLUTION_G, PRECURSOR_NAME, SAMPLE_ID, SafetyShield
from .stations import Mill, Press, RobotArm
from .xrd import XRDFolderDriver, write_json_atomic

__all__ = ["HardwareLab", "HardwareLabError", "LabSettings", "LabShield", "finished_records", "load_lab_file",
           "record_from_dict", "record_to_dict"]

log = logging.getLogger(__name__)

SAMPLE_SUFFIX = ".sample.json"  # sidecar next to the XRD request (recipe, masses, trace)
LOCATIONS = {"rack": "VIAL_RACK", "balance": "BALANCE", "mill": "MILL1", "press": "PRESS1",
             "furnace": "FURNACE1", "xrd": "XRD1", "storage": "STORAGE"}
STATION_POLL_S = 0.05  # s wall, STATUS? polling while a station is busy


class HardwareLabError(RuntimeError):
    """An experiment was aborted on the hardware (the message says why and what was made safe)."""


@dataclass(frozen=True)
class LabSettings:
    """The ``lab`` section of the lab file.

    Attributes:
        system: chemical system the lab makes (catalogue name).
        time_scale: lab seconds per wall-clock second (an accelerated emulator); None: real time.
        poll_s: furnace polling period during a firing, wall-clock s.
        batch_mass_g: target mass each recipe is weighed for, g.
        ambient_K: end setpoint of the cooling segment, K.
        xrd_poll_s: XRD result polling period, wall-clock s.
        reconnect_s: how long an emergency stop keeps re-opening a lost furnace port, wall s.
        watchdog_s: shield watchdog (no poll for this long -> safe), wall s; None: off.
        mill_rpm, press_force_kN, press_hold_s: fixed station settings.
    """

    system: str = "BaTiO3"
    time_scale: float | None = None
    poll_s: float = 1.0
    batch_mass_g: float = 2.0
    ambient_K: float = 298.15
    xrd_poll_s: float = 1.0
    reconnect_s: float = 30.0
    watchdog_s: float | None = None
    mill_rpm: float = 400.0
    press_force_kN: float = 10.0
    press_hold_s: float = 60.0

    @classmethod
    def from_dict(cls, data: Any, where: str) -> LabSettings:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: lab: expected a mapping, got {short(data)}")
        names = {f.name for f in fields(cls)}
        for key, value in data.items():
            if key not in names:
                raise ConfigError(f"{where}: lab.{key}: unknown field (expected one of {sorted(names)})")
            if key == "system":
                if not isinstance(value, str):
                    raise ConfigError(f"{where}: lab.system: expected a system name, got {short(value)}")
                continue
            if value is None and key in ("time_scale", "watchdog_s"):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                    or value <= 0:
                raise ConfigError(f"{where}: lab.{key}: expected a finite number > 0, got {short(value)}")
        return cls(**data)


def load_lab_file(path: str | Path) -> tuple[LabConfig, LabSettings]:
    """Read a lab YAML: the instrument config and the ``lab`` settings. Raises ``ConfigError``."""
    path = Path(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: <top level>: expected a mapping")
    data = dict(data)
    settings = LabSettings.from_dict(data.pop("lab", None), str(path))
    config = LabConfig.from_dict(data, path)
    missing = [n for n in ("furnace", "balance", "mill", "press", "robot", "xrd") if getattr(config, n) is None]
    if missing:
        raise ConfigError(f"{path}: {', '.join(missing)}: missing (a HardwareLab needs every instrument)")
    return config, settings


class LabShield(SafetyShield):
    """The safety shield plus the lab's other state-changing commands (dose, tare, XRD scan).

    Each is refused (journaled) while the emergency stop is latched, like every other
    state-changing command.
    """

    robot: DosingRobot | None

    def __init__(self, *args: Any, robot: DosingRobot | None = None, balance: BalanceDriver | None = None,
                 xrd: XRDDriver | None = None, **kwargs: Any) -> None:
        super().__init__(*args, robot=robot, **kwargs)
        self.balance = balance
        self.xrd = xrd

    def tare_balance(self) -> float | None:
        """Tare the balance (``T``); returns the tare weight, g (None in dry run)."""
        return self._send("balance.tare", self.balance.tare)

    def dose(self, precursor: str, mass_g: float) -> None:
        """Dose ``mass_g`` g of ``precursor`` into the vial on the balance.

        ``precursor`` is one formula word (``BaCO3``); ``mass_g`` must be in
        (0, max_mass_g] and representable by the ``DOSE`` command, which carries
        ``DOSE_DECIMALS`` decimals: a mass below ``DOSE_RESOLUTION_G`` (it would go out as
        ``0.00000``) or one that rounds above max_mass_g is refused, never sent. The wire
        text is journaled with the command.
        """
        name = self._name("dose.precursor", precursor, PRECURSOR_NAME,
                          "a precursor formula like 'BaCO3' (ASCII letters, digits, ()._-; at most 32)")
        mass = self._checked("dose.mass", mass_g)
        cap = self.limits.max_mass_g
        if not 0 < mass <= cap:
            raise self._refuse("dose.mass", mass, cap, "mass must be in (0, max_mass_g]")
        wire = f"{mass:.{DOSE_DECIMALS}f}"
        if mass < DOSE_RESOLUTION_G or float(wire) <= 0:
            raise self._refuse("dose.mass", mass, DOSE_RESOLUTION_G,
                               f"below the DOSE command's resolution {DOSE_RESOLUTION_G:g} g (would be sent as {wire})")
        if float(wire) > cap:
            raise self._refuse("dose.mass", mass, cap, f"goes out as {wire} g on the wire, above max_mass_g")
        robot = self._station("robot", self.robot)
        self._send("dose", lambda: robot.command("DOSE", name, wire), precursor=name, mass_g=mass, wire=wire)

    def xrd_scan(self, sample_id: str) -> str | None:
        """Request an XRD scan of ``sample_id`` (a file-name-safe id); returns the request id
        (None in dry run)."""
        sid = self._name("xrd.scan", sample_id, SAMPLE_ID,
                         "a sample id (ASCII letters, digits, ._-; at most 64 characters)")
        return self._send("xrd.scan", lambda: self.xrd.submit(sid), sample_id=sid)

    def read(self, name: str, func: Callable[[], Any]) -> Any:
        """Take a reading with ``func`` and journal it (before the caller uses it)."""
        with self._lock:  # one transaction on a port at a time (the watchdog thread sends too)
            value = func()
            self._record("reading", name=name, value=value)
        return value


def _num(v: Any) -> float:
    return float(v) if v is not None else math.nan


def record_to_dict(rec: SampleRecord) -> dict[str, Any]:
    """The agent-visible fields of a record as JSON-able data (no truth)."""
    return {
        "sample_id": rec.sample_id, "tag": rec.tag, "recipe": rec.recipe.to_dict(), "status": rec.status,
        "weighed_g": dict(rec.weighed_g), "lot": dict(rec.lot), "mill_time_h": rec.mill_time_h,
        "furnace": rec.furnace, "firing_id": rec.firing_id,
        "programme": None if rec.programme is None else {
            "atmosphere": rec.programme.atmosphere,
            "segments": [[s.kind, s.start_K, s.end_K, s.duration_s] for s in rec.programme.segments]},
        "tc_summary": dict(rec.tc_summary), "humidity": rec.humidity, "waits_s": dict(rec.waits_s),
        "instruments": dict(rec.instruments), "xrd_phase_fractions": dict(rec.xrd_phase_fractions),
        "performance": rec.performance, "started_s": rec.started_s, "finished_s": rec.finished_s,
    }


def record_from_dict(d: dict[str, Any]) -> SampleRecord:
    """Inverse of :func:`record_to_dict`.

    Raises:
        ValueError: ``status`` is not a :data:`~synthgap.envs.lab.records.SampleStatus`.
    """
    prog = d.get("programme")
    programme = None if prog is None else Programme(
        tuple(Segment(k, float(a), float(b), float(t)) for k, a, b, t in prog["segments"]), prog["atmosphere"])
    return SampleRecord(
        d["sample_id"], d.get("tag", ""), Recipe.from_dict(d["recipe"]), sample_status(d["status"], "record.status"),
        weighed_g={k: float(v) for k, v in d.get("weighed_g", {}).items()}, lot=dict(d.get("lot", {})),
        mill_time_h=_num(d.get("mill_time_h")), furnace=int(d.get("furnace", -1)), firing_id=d.get("firing_id", ""),
        programme=programme, tc_summary={k: _num(v) for k, v in d.get("tc_summary", {}).items()},
        humidity=_num(d.get("humidity")), waits_s={k: float(v) for k, v in d.get("waits_s", {}).items()},
        instruments=dict(d.get("instruments", {})),
        xrd_phase_fractions={k: float(v) for k, v in d.get("xrd_phase_fractions", {}).items()},
        performance=_num(d.get("performance")), started_s=_num(d.get("started_s")),
        finished_s=_num(d.get("finished_s")))


def finished_records(journal_path: str | Path) -> list[dict[str, Any]]:
    """The ``experiment_finished`` events of a journal, in order (each has ``record``)."""
    return [e for e in read_journal(journal_path).events if e.get("event") == "experiment_finished"]


@dataclass
class _Pending:
    rec: SampleRecord
    fired: bool = False


class HardwareLab:
    """The Lab protocol on real (or emulated) instruments; see the module docstring.

    Args:
        config: instruments and limits (``LabConfig``), or a lab file path (then
            ``settings`` come from its ``lab`` section unless given).
        settings: :class:`LabSettings`.
        journal: journal path (default ``config.journal``); an existing journal is
            appended to (its experiment count and campaign id continue).
        dry_run: shield dry run (see module docstring).
        ports: optional name -> already-open port objects (tests); otherwise each
            instrument is opened from its URL.

    Raises:
        ConfigError: a missing instrument or journal.
    """

    def __init__(self, config: LabConfig | str | Path, settings: LabSettings | None = None, *,
                 journal: str | Path | None = None, dry_run: bool = False) -> None:
        if not isinstance(config, LabConfig):
            config, file_settings = load_lab_file(config)
            settings = settings or file_settings
        self.config = config
        self.settings = settings or LabSettings()
        self.dry_run = dry_run
        journal_path = Path(journal) if journal is not None else config.journal
        if journal_path is None:
            raise ConfigError("a HardwareLab needs a journal: set 'journal' in the lab file or pass journal=")
        journal_path.parent.mkdir(parents=True, exist_ok=True)
        previous = read_journal(journal_path).events if journal_path.exists() else []
        self.journal_path = journal_path
        self.journal = Journal(journal_path)
        self._closed = False
        self.campaign_id = next((e["campaign_id"] for e in previous if "campaign_id" in e), uuid.uuid4().hex[:8])
        self._n = sum(1 for e in previous if e.get("event") == "experiment_started")
        self.system = load_system(self.settings.system)
        lim = config.limits
        #: what this lab refuses beyond the recipe and programme limits: its safety limits.
        self.caps = LabCaps(max_temperature_K=lim.max_temperature_K,
                            max_ramp_rate_K_per_min=lim.max_ramp_rate_K_per_min, max_dwell_h=lim.max_dwell_h,
                            max_mass_g=lim.max_mass_g)
        self._opened = time.monotonic()
        self._replay: deque[dict[str, Any]] = deque()
        self._pending: dict[str, _Pending] = {}
        self._queue: list[str] = []
        self.records: dict[str, SampleRecord] = {}
        self.last_record: SampleRecord | None = None
        self.firings: list[FurnaceLog] = []
        self._drivers: list[Any] = []
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ connection
    def _open(self) -> None:
        c = self.config
        self.journal.append("lab_opened", campaign_id=self.campaign_id, dry_run=self.dry_run,
                            source=str(c.source) if c.source else None, system=self.system.name,
                            time_scale=self.settings.time_scale)
        self.furnace = self._open_furnace()
        self.balance = self._open_line(MTSICSBalance, c.balance)
        self.mill_drv = self._open_line(Mill, c.mill)
        self.press_drv = self._open_line(Press, c.press)
        self.robot = self._open_line(RobotArm, c.robot)
        self.xrd = XRDFolderDriver(c.xrd.inbox, c.xrd.outbox, timeout_s=c.xrd.timeout_s,
                                   poll_s=self.settings.xrd_poll_s, sleep=self._idle_sleep)
        self.shield = LabShield(self.furnace, c.limits, self.journal, robot=self.robot, mill=self.mill_drv,
                                press=self.press_drv, balance=self.balance, xrd=self.xrd, dry_run=self.dry_run,
                                watchdog_s=self.settings.watchdog_s, furnace_clock=lambda: self.now)
        self.shield.connect()
        if self.settings.watchdog_s is not None:
            self.shield.start_watchdog()

    def _open_furnace(self) -> EurothermController:
        f = self.config.furnace
        kwargs: dict[str, Any] = {"slave": f.slave, "decimals": f.decimals}
        if f.baudrate:
            kwargs["baudrate"] = f.baudrate
        if f.timeout_s:
            kwargs["timeout_s"] = f.timeout_s
        drv = self._connect("furnace", f.url, lambda: EurothermController.from_url(f.url, **kwargs))
        self._drivers.append(drv)
        return drv

    @staticmethod
    def _connect(name: str, url: str, opener: Callable[[], Any]) -> Any:
        try:
            return opener()
        except OSError as exc:  # serial.SerialException is an OSError
            raise ConfigError(f"{name}: cannot open {url}: {exc}") from exc

    def _open_line(self, cls: type, dev: Any) -> Any:
        kwargs: dict[str, Any] = {}
        if dev.baudrate:
            kwargs["baudrate"] = dev.baudrate
        if dev.timeout_s:
            kwargs["timeout_s"] = dev.timeout_s
        drv = self._connect(cls.KIND if hasattr(cls, "KIND") else "balance", dev.url,
                            lambda: cls.from_url(dev.url, **kwargs))
        self._drivers.append(drv)
        return drv

    def close(self) -> None:
        """Stop the watchdog, close every port and the journal (idempotent)."""
        shield = getattr(self, "shield", None)
        if shield is not None:
            shield.close()
        for drv in self._drivers:
            try:
                drv.close()
            except Exception as exc:  # a dead port must not stop the others from closing
                log.warning("closing %s: %r", type(drv).__name__, exc)
        self._drivers.clear()
        if not self._closed:
            self._closed = True
            self.journal.append("lab_closed", campaign_id=self.campaign_id)
            self.journal.close()

    def __enter__(self) -> HardwareLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ clock
    @property
    def now(self) -> float:
        """Lab clock, s: wall time since opening (times ``time_scale`` if configured)."""
        return (time.monotonic() - self._opened) * (self.settings.time_scale or 1.0)

    def _wait(self, lab_s: float) -> None:
        """Sleep ``lab_s`` lab seconds (nothing in dry run), feeding the watchdog."""
        if self.dry_run or lab_s <= 0:
            return
        end = time.monotonic() + lab_s / (self.settings.time_scale or 1.0)
        while (left := end - time.monotonic()) > 0:
            self._idle_sleep(min(left, self.settings.poll_s))

    def _idle_sleep(self, wall_s: float) -> None:
        """Sleep ``wall_s`` wall seconds; with a watchdog, poll the furnace afterwards so an
        idle furnace does not trip it (a trip would stop the mill mid-run)."""
        time.sleep(wall_s)
        if self.settings.watchdog_s is not None:
            self.shield.poll()

    # ------------------------------------------------------------------ resume
    def replay(self, records: Sequence[dict[str, Any]]) -> None:
        """Queue journaled records: the next ``run_recipe`` calls return them, in order,
        without touching an instrument (the recipe must match the journaled one)."""
        self._replay.extend(records)

    @property
    def replaying(self) -> bool:
        """True while journaled records are still queued for :meth:`run_recipe`."""
        return bool(self._replay)

    # ------------------------------------------------------------------ validation
    def _check_recipe(self, recipe: Recipe) -> None:
        check_recipe(self.system, recipe, self.caps, self.settings.batch_mass_g)

    def commanded_masses(self, recipe: Recipe) -> list[tuple[str, float]]:
        """(precursor, g) to weigh for ``batch_mass_g`` g of target, exactly as the twin commands them."""
        return precursor_masses(self.system, recipe.target, recipe.precursors, self.settings.batch_mass_g,
                                recipe.excess)

    # ------------------------------------------------------------------ the whole chain
    def run_recipe(self, recipe: Recipe) -> SampleRecord:
        """Make and measure one sample on the instruments; returns when it is finished.

        Raises:
            LabInputError: the recipe is invalid or outside the lab's limits (nothing done).
            HardwareLabError: an instrument failed or the shield refused; the lab was
                emergency-stopped (furnace to its safe temperature) first.
        """
        self._check_recipe(recipe)
        if self._replay:
            return self._replayed(recipe)
        sid = self.new_sample(recipe)
        rec = self._pending[sid].rec
        self._guarded(sid, lambda: self._chain(rec))
        return self._finish(sid)

    def _replayed(self, recipe: Recipe) -> SampleRecord:
        event = self._replay.popleft()
        rec = record_from_dict(event["record"])
        if rec.recipe.to_dict() != recipe.to_dict():
            self._replay.clear()
            raise LabInputError(
                f"resume: the policy now proposes {recipe.to_dict()} but the journal recorded "
                f"{rec.recipe.to_dict()} for experiment {rec.sample_id}; resume needs the same deterministic policy")
        self.journal.append("experiment_replayed", experiment_id=rec.sample_id)
        self.records[rec.sample_id] = rec
        self.last_record = rec
        return rec

    def _guarded(self, sid: str, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except (InstrumentError, SafetyViolation, OSError) as exc:
            self.journal.append("experiment_failed", experiment_id=sid, error=f"{type(exc).__name__}: {exc}")
            ok = self.emergency_stop(f"experiment {sid}: {type(exc).__name__}: {exc}")
            safe = self.config.limits.safe_temperature_K
            state = (f"furnace commanded to its safe temperature {safe:g} K" if ok else
                     "COULD NOT command the furnace to its safe state: check it by hand")
            raise HardwareLabError(f"experiment {sid} aborted: {type(exc).__name__}: {exc}; {state}") from exc
        except BaseException as exc:  # Ctrl-C / SIGTERM (the shield's guard already stopped)
            self.journal.append("experiment_failed", experiment_id=sid, error=f"{type(exc).__name__}: {exc}")
            raise

    def _chain(self, rec: SampleRecord) -> None:
        sid = rec.sample_id
        self._prepare(rec)
        log_ = self._fire_load([sid], Programme.from_recipe(rec.recipe, self.settings.ambient_K))
        self._move("furnace", "xrd")
        self._characterise(rec)
        self._move("xrd", "storage")
        del log_

    def _move(self, src: str, dst: str) -> None:
        self.shield.move_sample(LOCATIONS[src], LOCATIONS[dst])

    def _prepare(self, rec: SampleRecord) -> None:
        recipe = rec.recipe
        self._move("rack", "balance")
        for p, m in self.commanded_masses(recipe):
            self._dispense(rec, p, m)
        self._move("balance", "mill")
        self._mill(rec, recipe.milling_time)
        self._move("mill", "press")
        self._press(rec)
        self._move("press", "furnace")

    def _dispense(self, rec: SampleRecord, precursor: str, mass_g: float) -> float:
        self.shield.tare_balance()
        self.shield.dose(precursor, mass_g)
        reading = self.shield.read(f"balance.{precursor}", lambda: self.balance.stable_mass().mass)
        weighed = float(reading) if not self.dry_run else float(mass_g)
        rec.weighed_g[precursor] = rec.weighed_g.get(precursor, 0.0) + weighed
        rec.instruments["balance"] = "balance-0"
        return weighed

    def _station_idle(self, name: str, driver: PolledStation, lab_s: float) -> None:
        self._wait(lab_s)
        deadline = time.monotonic() + 60.0
        while not self.dry_run and self.shield.read(f"{name}.status", driver.status) == "BUSY":
            if time.monotonic() > deadline:
                raise InstrumentError(f"{name} still BUSY after its run")
            time.sleep(STATION_POLL_S)

    def _mill(self, rec: SampleRecord, hours: float) -> None:
        if hours > 0:
            s = self.settings
            self.shield.run_mill(s.mill_rpm, hours * 3600.0)
            self._station_idle("mill", self.mill_drv, hours * 3600.0)
        rec.mill_time_h = hours
        rec.instruments["mill"] = "mill-0"

    def _press(self, rec: SampleRecord) -> None:
        s = self.settings
        self.shield.press_pellet(s.press_force_kN, s.press_hold_s)
        self._station_idle("press", self.press_drv, s.press_hold_s)
        rec.instruments["press"] = "press-0"

    # ------------------------------------------------------------------ furnace
    def _fire_load(self, sample_ids: list[str], programme: Programme) -> FurnaceLog:
        firing_id = f"F-{sample_ids[0]}"
        started = self.now
        times: list[float] = []
        setpoints: list[float] = []
        readings: list[float] = []
        if not self.dry_run:
            first = self.shield.poll()
            clock: dict[str, float] = {}  # "t0": lab time of the first setpoint write
            times.append(0.0)
            setpoints.append(first)
            readings.append(first)
            for k, seg in enumerate(programme.segments):
                self._segment(seg, first if k == 0 else None, clock, times, setpoints, readings)
            # unload only once the interlock allows it
            while readings[-1] > self.config.limits.safe_temperature_K:
                self._sample(clock["t0"], programme.segments[-1].end_K, times, setpoints, readings)
        else:
            for seg in programme.segments:  # recorded by the shield, never sent
                self.shield.set_ramp_rate(self._rate(seg))
                self.shield.set_setpoint(seg.end_K)
        log_ = FurnaceLog(firing_id, 0, tuple(sample_ids), programme, "ok", started, self.now,
                          np.asarray(times), np.asarray(setpoints), np.asarray(readings))
        self.firings.append(log_)
        summary = log_.summary()
        self.journal.append("firing", firing_id=firing_id, samples=list(sample_ids), programme=programme.to_json(),
                            **summary)
        for sid in sample_ids:
            rec = self.records[sid]
            rec.furnace, rec.firing_id, rec.programme = 0, firing_id, programme
            rec.tc_summary = summary
            rec.instruments["furnace"] = "furnace-0"
            if sid in self._pending:
                self._pending[sid].fired = True
        return log_

    def _rate(self, seg: Segment) -> float:
        """Rate limit of a segment, K/min (a dwell keeps the cap so a change stays ramped)."""
        if is_dwell(seg.start_K, seg.end_K):
            return self.config.limits.max_ramp_rate_K_per_min
        return abs(seg.end_K - seg.start_K) * 60.0 / seg.duration_s

    def _segment(self, seg: Segment, first: float | None, clock: dict[str, float], times: list[float],
                 setpoints: list[float], readings: list[float]) -> None:
        """Run one programme segment: program rate + setpoint, then poll until it ends.

        Lab times are taken at the middle of each Modbus transaction (at high time scales a
        transaction lasts hundreds of lab seconds).
        """
        dwell = is_dwell(seg.start_K, seg.end_K)
        if dwell:
            self.shield.start_dwell(seg.duration_s / 3600.0)
            start = self.now
        else:
            rate = self.shield.set_ramp_rate(self._rate(seg))  # K/min as sent (the wire's resolution)
            before = self.now
            self.shield.set_setpoint(seg.end_K)
            start = 0.5 * (before + self.now)
        clock.setdefault("t0", start)
        if first is not None:
            times[0] = start - clock["t0"]
        begin_K = seg.start_K if first is None else first
        duration = seg.duration_s
        if not dwell:  # the controller ramps from where it is, at the rate it was sent
            duration = abs(seg.end_K - begin_K) * 60.0 / rate
        scale = self.settings.time_scale or 1.0
        while True:
            remaining = duration - (self.now - start)
            if remaining <= 0:
                break
            time.sleep(min(self.settings.poll_s, remaining / scale))
            u = min(1.0, (self.now - start) / duration) if duration > 0 else 1.0
            self._sample(clock["t0"], begin_K + (seg.end_K - begin_K) * u, times, setpoints, readings)
        if dwell:
            self.shield.end_dwell()

    def _sample(self, t0: float, setpoint: float, times: list[float], setpoints: list[float],
                readings: list[float]) -> None:
        before = self.now
        value = self.shield.poll()
        times.append(0.5 * (before + self.now) - t0)
        setpoints.append(setpoint)
        readings.append(value)

    # ------------------------------------------------------------------ XRD
    def _characterise(self, rec: SampleRecord) -> Characterisation:
        sid = rec.sample_id
        if self.dry_run:
            self.shield.xrd_scan(sid)
            rec.instruments.update(xrd="xrd-0", property="xrd-0")
            return Characterisation({}, math.nan, "xrd-0", "xrd-0")
        log_ = self.firings[-1]
        write_json_atomic(self.config.xrd.inbox / f"{sid}{SAMPLE_SUFFIX}", {
            "sample_id": sid, "system": self.system.name, "recipe": rec.recipe.to_dict(),
            "weighed_g": rec.weighed_g, "batch_mass_g": self.settings.batch_mass_g,
            "programme": log_.programme.to_json(),
            "trace": {"time_s": log_.time_s.tolist(), "thermocouple_K": log_.thermocouple_K.tolist()}})
        request_id = self.shield.xrd_scan(sid)
        fractions = self.xrd.wait(request_id)
        result_path = self.config.xrd.outbox / f"{request_id}.result.json"
        extra = json.loads(result_path.read_text(encoding="utf-8"))
        performance = _num(extra.get("performance"))
        self.journal.append("reading", name="xrd", sample_id=sid, request_id=request_id,
                            phase_fractions=fractions, performance=performance)
        rec.xrd_phase_fractions = {p: fractions.get(p, 0.0) for p in self.system.solids}
        rec.performance = performance
        rec.instruments.update(xrd="xrd-0", property="xrd-0")
        return Characterisation(dict(rec.xrd_phase_fractions), performance, "xrd-0", "xrd-0")

    def recover(self, reason: str) -> None:
        """Bring the furnace back to ambient and wait until it reads at or below the safe
        temperature (after a crash left it hot). Raises ``HardwareLabError`` on failure."""
        lim = self.config.limits
        self.journal.append("recover", reason=reason)
        if self.shield.latched is not None:
            self.journal.append("recover_refused", reason=f"emergency stop latched: {self.shield.latched}")
            raise HardwareLabError(
                f"{reason}: refused: the emergency stop ({self.shield.latched}) is still latched; nothing was "
                "sent. Check the lab, then resume with --reset-emergency-stop REASON --operator NAME (journaled; "
                "in Python: HardwareLab.reset_emergency_stop(operator, reason))")

        def run() -> None:
            temperature = self.shield.poll()
            self.shield.set_ramp_rate(lim.max_ramp_rate_K_per_min)
            self.shield.set_setpoint(self.settings.ambient_K)
            lab_s = 2.0 * max(temperature - self.settings.ambient_K, 0.0) * 60.0 / lim.max_ramp_rate_K_per_min + 3600.0
            deadline = self.now + lab_s
            while self.shield.poll() > lim.safe_temperature_K:
                if self.now > deadline:
                    raise InstrumentError(f"furnace still above {lim.safe_temperature_K:g} K after {lab_s:g} lab s")
                time.sleep(self.settings.poll_s)
        self._guarded("recover", run)

    # ------------------------------------------------------------------ emergency
    def emergency_stop(self, reason: str) -> bool:
        """Furnace to its safe temperature, stations stopped; re-opens a lost furnace port
        for up to ``reconnect_s``. Never raises; True once the safe setpoint was sent."""
        self.journal.append("emergency_stop", reason=reason)
        ok = self.shield.emergency_stop(reason)
        deadline = time.monotonic() + self.settings.reconnect_s
        while not ok and not self.dry_run and time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                self._reopen_furnace()
            except Exception as exc:
                self.journal.append("reconnect_failed", device="furnace", error=repr(exc))
                continue
            ok = self.shield.emergency_stop(f"{reason} (after re-opening the furnace port)")
        self.journal.append("emergency_stop_done", ok=ok)
        return ok

    def reset_emergency_stop(self, operator: str, reason: str) -> bool:
        """Clear the shield's latched emergency stop (journaled with ``operator`` and
        ``reason``); see :meth:`SafetyShield.reset_emergency_stop
        <synthgap.hardware.shield.SafetyShield.reset_emergency_stop>`."""
        return self.shield.reset_emergency_stop(operator, reason)

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

    # ------------------------------------------------------------------ Lab protocol, step by step
    def new_sample(self, recipe: Recipe, tag: str = "") -> str:
        """Register a sample (journaled) to be driven step by step; returns its id."""
        self._check_recipe(recipe)
        self._n += 1
        sid = f"{self.campaign_id}-E{self._n:04d}"
        rec = SampleRecord(sid, tag or ("DRY-RUN" if self.dry_run else ""), recipe, status="running",
                           started_s=self.now)
        self._pending[sid] = _Pending(rec)
        self.records[sid] = rec
        self.journal.append("experiment_started", experiment_id=sid, campaign_id=self.campaign_id,
                            recipe=recipe.to_dict(), dry_run=self.dry_run)
        return sid

    def _finish(self, sid: str) -> SampleRecord:
        rec = self._pending.pop(sid).rec
        rec.status = "dry_run" if self.dry_run else "done"
        rec.finished_s = self.now
        self.journal.append("experiment_finished", experiment_id=sid, campaign_id=self.campaign_id,
                            record=record_to_dict(rec))
        self.last_record = rec
        return rec

    def _get(self, sid: str) -> _Pending:
        try:
            return self._pending[sid]
        except KeyError:
            raise LabInputError(f"unknown or finished sample id {sid!r}") from None

    def submit(self, recipe: Recipe, tag: str = "") -> str:
        """Queue a sample; :meth:`run` makes the queued samples one after the other."""
        sid = self.new_sample(recipe, tag)
        self._queue.append(sid)
        return sid

    def submit_load(self, recipes: Sequence[Recipe], tags: Sequence[str] | None = None) -> list[str]:
        """Queue samples; this lab has one furnace and fires them one load each."""
        tags = list(tags) if tags is not None else [""] * len(recipes)
        check_load(recipes, tags)
        return [self.submit(r, t) for r, t in zip(recipes, tags, strict=True)]

    def run(self, until: float | None = None) -> list[SampleRecord]:
        """Make the queued samples in order (until lab time ``until``, s); return the finished."""
        out = []
        while self._queue and (until is None or self.now < until):
            sid = self._queue.pop(0)
            rec = self._pending[sid].rec
            self._guarded(sid, lambda rec=rec: self._chain(rec))
            out.append(self._finish(sid))
        return out

    def dispense(self, sample_id: str, precursor: str, mass_g: float) -> float:
        """Dispense and weigh ``mass_g`` g of ``precursor`` (vial goes on the balance if needed)."""
        p = self._get(sample_id)
        mass_g = check_dose(self.system, precursor, mass_g)
        if not p.rec.weighed_g:
            self._guarded(sample_id, lambda: self._move("rack", "balance"))
        return self._guarded(sample_id, lambda: self._dispense(p.rec, precursor, mass_g))

    def mill(self, sample_id: str, hours: float) -> None:
        """Mill the sample for ``hours`` h (the vial leaves the balance)."""
        p = self._get(sample_id)
        hours = check_milling(hours)

        def run() -> None:
            self._move("balance", "mill")
            self._mill(p.rec, hours)
        self._guarded(sample_id, run)

    def press(self, sample_id: str) -> None:
        """Press the milled powder; the crucible goes to the furnace."""
        p = self._get(sample_id)

        def run() -> None:
            self._move("mill", "press")
            self._press(p.rec)
            self._move("press", "furnace")
        self._guarded(sample_id, run)

    def fire(self, sample_ids: list[str], programme: Programme) -> FurnaceLog:
        """Fire the load with ``programme`` (setpoints within the lab's limits)."""
        for sid in sample_ids:
            self._get(sid)
        if not sample_ids:
            raise LabInputError("fire needs at least one sample id")
        check_programme(programme, self.caps)
        return self._guarded(sample_ids[0], lambda: self._fire_load(list(sample_ids), programme))

    def characterise(self, sample_id: str) -> Characterisation:
        """XRD and property of a fired sample; finishes the sample."""
        p = self._get(sample_id)
        if not p.fired:
            raise LabInputError(f"sample {sample_id!r} has not been fired")

        def run() -> Characterisation:
            self._move("furnace", "xrd")
            out = self._characterise(p.rec)
            self._move("xrd", "storage")
            return out
        out = self._guarded(sample_id, run)
        self._finish(sample_id)
        return out

    def telemetry(self, sample_id: str) -> dict:
        """The agent-visible record of a sample so far, as a flat dict."""
        if sample_id not in self.records:
            raise LabInputError(f"unknown sample id {sample_id!r}")
        return self.records[sample_id].to_row()
