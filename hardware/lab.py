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

Lab file: :func:`~synthgap.hardware.config.load_lab_file` (instruments, limits, and the
``lab`` section, :class:`~synthgap.hardware.config.LabSettings`). ``now`` is the lab clock
(``clock``; by default :class:`~synthgap.hardware.campaign_state.ScaledClock`: wall-clock s
since opening, times ``time_scale``, for an emulated furnace running faster than real time).

This module is the front-end: validation, records, the chain's order, the step-by-step
protocol, experiment events. The instruments, which only execute, are
:mod:`~synthgap.hardware.backend`; campaign id, count and resume
:mod:`~synthgap.hardware.campaign_state`; the firing :mod:`~synthgap.hardware.programme`.

Dry run (``dry_run=True``): the shield sends no state-changing command (reads still
happen); nothing is fired, XRD is not requested, and every record comes back with
``status="dry_run"``, empty XRD and NaN performance.

Units: temperatures K, masses g, times s (lab clock), rates K/min, mill time h.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthgap.envs.chemistry import Recipe, load_system
from synthgap.envs.chemistry.stoichiometry import precursor_masses
from synthgap.envs.lab import validation
from synthgap.envs.lab.protocol import LabInputError
from synthgap.envs.lab.records import Characterisation, FurnaceLog, Programme, SampleRecord

from .backend import HardwareBackend
from .campaign_state import CampaignState, ScaledClock, finished_records, record_from_dict, record_to_dict
from .config import LabConfig, LabSettings, load_lab_file
from .errors import ConfigError
from .journal import Journal, append_quietly
from .lab_shield import LabShield
from .shield_values import brief_error

__all__ = ["HardwareLab", "HardwareLabError", "LabSettings", "LabShield", "finished_records", "load_lab_file",
           "record_from_dict", "record_to_dict"]


class HardwareLabError(RuntimeError):
    """An experiment was aborted on the hardware (the message says why and what was made safe)."""


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
        clock: the lab clock, a callable returning lab s (default: ``ScaledClock(time_scale)``,
            started when the lab opens). Waits become wall sleeps through ``settings.time_scale``,
            so an injected clock must run at that rate (wrap the default to observe the times).

    Raises:
        ConfigError: a missing instrument or journal.
    """

    def __init__(self, config: LabConfig | str | Path, settings: LabSettings | None = None, *,
                 journal: str | Path | None = None, dry_run: bool = False,
                 clock: Callable[[], float] | None = None) -> None:
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
        #: campaign id, experiment count (continued from the journal) and the resume queue
        self.campaign = CampaignState.from_journal(journal_path)
        self.journal_path = journal_path
        self.journal = Journal(journal_path)
        self._closed = False
        self.system = load_system(self.settings.system)
        lim = config.limits
        #: what this lab refuses beyond the recipe and programme limits: its safety limits.
        self.caps = validation.LabCaps(max_temperature_K=lim.max_temperature_K,
                            max_ramp_rate_K_per_min=lim.max_ramp_rate_K_per_min, max_dwell_h=lim.max_dwell_h,
                            max_mass_g=lim.max_mass_g)
        #: the lab clock, lab s (see ``clock``)
        self.clock: Callable[[], float] = clock if clock is not None else ScaledClock(self.settings.time_scale)
        self._pending: dict[str, _Pending] = {}
        self._queue: list[str] = []
        self.records: dict[str, SampleRecord] = {}
        self.last_record: SampleRecord | None = None
        self.firings: list[FurnaceLog] = []
        #: the instruments behind the shield (they only execute)
        self.backend = HardwareBackend(config, self.settings, self.journal, clock=self.clock, dry_run=dry_run)
        try:
            self.journal.append("lab_opened", campaign_id=self.campaign_id, dry_run=self.dry_run,
                                source=str(config.source) if config.source else None, system=self.system.name,
                                time_scale=self.settings.time_scale)
            self.backend.open()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the watchdog, close every port and the journal (idempotent)."""
        self.backend.close()
        if not self._closed:
            self._closed = True
            self.journal.append("lab_closed", campaign_id=self.campaign_id)
            self.journal.close()

    def __enter__(self) -> HardwareLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the backend's instruments
    @property
    def shield(self) -> LabShield:
        """The safety shield every state-changing command goes through."""
        return self.backend.shield

    @property
    def furnace(self) -> Any:
        """The furnace controller driver (K, K/min); replaced when a lost port is re-opened."""
        return self.backend.furnace

    @property
    def balance(self) -> Any:
        """The balance driver (g)."""
        return self.backend.balance

    @property
    def robot(self) -> Any:
        """The robot arm (with the dosing head) driver."""
        return self.backend.robot

    @property
    def mill_drv(self) -> Any:
        """The mill driver."""
        return self.backend.mill_drv

    @property
    def press_drv(self) -> Any:
        """The press driver."""
        return self.backend.press_drv

    @property
    def xrd(self) -> Any:
        """The XRD folder driver."""
        return self.backend.xrd

    # ------------------------------------------------------------------ clock and campaign
    @property
    def campaign_id(self) -> str:
        """The campaign's id (continued from the journal), 8 hex digits."""
        return self.campaign.campaign_id

    @property
    def now(self) -> float:
        """Lab clock, s (the ``clock`` argument: by default wall time since opening, times
        ``time_scale`` if configured)."""
        return self.clock()

    def replay(self, records: Sequence[dict[str, Any]]) -> None:
        """Queue journaled records: the next ``run_recipe`` calls return them, in order,
        without touching an instrument (the recipe must match the journaled one)."""
        self.campaign.queue_replay(records)

    @property
    def replaying(self) -> bool:
        """True while journaled records are still queued for :meth:`run_recipe`."""
        return self.campaign.replaying

    # ------------------------------------------------------------------ validation
    def _check_recipe(self, recipe: Recipe) -> None:
        validation.check_recipe(self.system, recipe, self.caps, self.settings.batch_mass_g)

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
        if self.campaign.replaying:
            return self._replayed(recipe)
        sid = self.new_sample(recipe)
        rec = self._pending[sid].rec
        self._guarded(sid, lambda: self._chain(rec))
        return self._finish(sid)

    def _replayed(self, recipe: Recipe) -> SampleRecord:
        rec = self.campaign.next_replayed(recipe)
        self.journal.append("experiment_replayed", experiment_id=rec.sample_id)
        self.records[rec.sample_id] = rec
        self.last_record = rec
        return rec

    def _guarded(self, sid: str, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except Exception as exc:  # any failure (a bug too) mid-experiment: the furnace goes to safe first
            error = brief_error(exc)
            ok = self.emergency_stop(f"experiment {sid}: {error}")
            append_quietly(self.journal, "experiment_failed", experiment_id=sid, error=error)
            safe = self.config.limits.safe_temperature_K
            state = (f"furnace commanded to its safe temperature {safe:g} K" if ok else
                     "COULD NOT command the furnace to its safe state: check it by hand")
            raise HardwareLabError(f"experiment {sid} aborted: {error}; {state}") from exc
        except BaseException as exc:  # Ctrl-C / SIGTERM (the shield's guard stops once unwound)
            append_quietly(self.journal, "experiment_failed", experiment_id=sid, error=brief_error(exc))
            raise

    def _chain(self, rec: SampleRecord) -> None:
        self._prepare(rec)
        self._fire_load([rec.sample_id], Programme.from_recipe(rec.recipe, self.settings.ambient_K))
        self.backend.move("furnace", "xrd")
        self._characterise(rec)
        self.backend.move("xrd", "storage")

    def _prepare(self, rec: SampleRecord) -> None:
        recipe = rec.recipe
        self.backend.move("rack", "balance")
        for p, m in self.commanded_masses(recipe):
            self._dispense(rec, p, m)
        self.backend.move("balance", "mill")
        self._mill(rec, recipe.milling_time)
        self.backend.move("mill", "press")
        self._press(rec)
        self.backend.move("press", "furnace")

    def _dispense(self, rec: SampleRecord, precursor: str, mass_g: float) -> float:
        weighed = self.backend.dispense(precursor, mass_g)
        rec.weighed_g[precursor] = rec.weighed_g.get(precursor, 0.0) + weighed
        rec.instruments["balance"] = "balance-0"
        return weighed

    def _mill(self, rec: SampleRecord, hours: float) -> None:
        self.backend.mill(hours)
        rec.mill_time_h = hours
        rec.instruments["mill"] = "mill-0"

    def _press(self, rec: SampleRecord) -> None:
        self.backend.press()
        rec.instruments["press"] = "press-0"

    def _fire_load(self, sample_ids: list[str], programme: Programme) -> FurnaceLog:
        firing_id = f"F-{sample_ids[0]}"
        started = self.now
        run = self.backend.fire(programme)
        log_ = FurnaceLog(firing_id, 0, tuple(sample_ids), programme, "ok", started, self.now,
                          np.asarray(run.time_s), np.asarray(run.setpoint_K), np.asarray(run.thermocouple_K))
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

    def _characterise(self, rec: SampleRecord) -> Characterisation:
        fractions, performance = self.backend.characterise(rec, self.system.name, self.firings[-1])
        rec.instruments.update(xrd="xrd-0", property="xrd-0")
        if self.dry_run:
            return Characterisation({}, performance, "xrd-0", "xrd-0")
        rec.xrd_phase_fractions = {p: fractions.get(p, 0.0) for p in self.system.solids}
        rec.performance = performance
        return Characterisation(dict(rec.xrd_phase_fractions), performance, "xrd-0", "xrd-0")

    # ------------------------------------------------------------------ recovery and emergency
    def recover(self, reason: str) -> None:
        """Bring the furnace back to ambient and wait until it reads at or below the safe
        temperature (after a crash left it hot). Raises ``HardwareLabError`` on failure."""
        self.journal.append("recover", reason=reason)
        if self.shield.latched is not None:
            self.journal.append("recover_refused", reason=f"emergency stop latched: {self.shield.latched}")
            raise HardwareLabError(
                f"{reason}: refused: the emergency stop ({self.shield.latched}) is still latched; nothing was "
                "sent. Check the lab, then resume with --reset-emergency-stop REASON --operator NAME (journaled; "
                "in Python: HardwareLab.reset_emergency_stop(operator, reason))")
        self._guarded("recover", self.backend.cool_to_safe)

    def emergency_stop(self, reason: str) -> bool:
        """Furnace to its safe temperature, stations stopped; re-opens a lost furnace port
        for up to ``reconnect_s``. Never raises; True once the safe setpoint was sent."""
        return self.backend.emergency_stop(reason)

    def reset_emergency_stop(self, operator: str, reason: str) -> bool:
        """Clear the shield's latched emergency stop (journaled with ``operator`` and ``reason``);
        see :meth:`~synthgap.hardware.shield.SafetyShield.reset_emergency_stop`."""
        return self.shield.reset_emergency_stop(operator, reason)

    # ------------------------------------------------------------------ Lab protocol, step by step
    def new_sample(self, recipe: Recipe, tag: str = "") -> str:
        """Register a sample (journaled) to be driven step by step; returns its id."""
        self._check_recipe(recipe)
        sid = self.campaign.next_sample_id()
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
        validation.check_load(recipes, tags, self._check_recipe)  # the whole load, before any of it is queued
        return [self.submit(r, t) for r, t in zip(recipes, tags, strict=True)]

    def run(self, until: float | None = None) -> list[SampleRecord]:
        """Make the queued samples in order (until lab time ``until``, s); return the finished."""
        out = []
        validation.check_until(until, self.now)
        while self._queue and (until is None or self.now < until):
            sid = self._queue.pop(0)
            rec = self._pending[sid].rec
            self._guarded(sid, lambda rec=rec: self._chain(rec))
            out.append(self._finish(sid))
        return out

    def dispense(self, sample_id: str, precursor: str, mass_g: float) -> float:
        """Dispense and weigh ``mass_g`` g of ``precursor`` (vial goes on the balance if needed)."""
        p = self._get(sample_id)
        mass_g = validation.check_dose(self.system, precursor, mass_g)
        if not p.rec.weighed_g:
            self._guarded(sample_id, lambda: self.backend.move("rack", "balance"))
        return self._guarded(sample_id, lambda: self._dispense(p.rec, precursor, mass_g))

    def mill(self, sample_id: str, hours: float) -> None:
        """Mill the sample for ``hours`` h (the vial leaves the balance)."""
        p = self._get(sample_id)
        hours = validation.check_milling(hours)

        def run() -> None:
            self.backend.move("balance", "mill")
            self._mill(p.rec, hours)
        self._guarded(sample_id, run)

    def press(self, sample_id: str) -> None:
        """Press the milled powder; the crucible goes to the furnace."""
        p = self._get(sample_id)

        def run() -> None:
            self.backend.move("mill", "press")
            self._press(p.rec)
            self.backend.move("press", "furnace")
        self._guarded(sample_id, run)

    def fire(self, sample_ids: list[str], programme: Programme) -> FurnaceLog:
        """Fire the load with ``programme`` (setpoints within the lab's limits)."""
        for sid in sample_ids:
            self._get(sid)
        validation.check_load_ids(sample_ids)
        validation.check_programme(programme, self.caps)
        return self._guarded(sample_ids[0], lambda: self._fire_load(list(sample_ids), programme))

    def characterise(self, sample_id: str) -> Characterisation:
        """XRD and property of a fired sample; finishes the sample."""
        p = self._get(sample_id)
        if not p.fired:
            raise validation.not_fired(sample_id)

        def run() -> Characterisation:
            self.backend.move("furnace", "xrd")
            out = self._characterise(p.rec)
            self.backend.move("xrd", "storage")
            return out
        out = self._guarded(sample_id, run)
        self._finish(sample_id)
        return out

    def telemetry(self, sample_id: str) -> dict:
        """The agent-visible record of a sample so far, as a flat dict."""
        if sample_id not in self.records:
            raise LabInputError(f"unknown sample id {sample_id!r}")
        return self.records[sample_id].to_row()
