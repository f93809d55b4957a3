"""HardwareLab: the lab front-end (:class:`~synthgap.envs.lab.frontend.Lab`) on the real drivers.

One sample at a time runs the lab's one chain (:mod:`synthgap.envs.lab.frontend`):

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

``HardwareLab(...)`` is the lab front-end (:class:`~synthgap.envs.lab.frontend.Lab`:
validation, records, the chain's order, the step-by-step protocol) over
:class:`~synthgap.hardware.backend.HardwareBackend` (the instruments, which only execute,
and the experiment journal), plus what only hardware has: the journal and campaign
(:mod:`~synthgap.hardware.campaign_state`: id, count, resume), replay, recovery and the
latched emergency stop. A shared load (``submit_load``) is prepared crucible by crucible
and fired once.

Dry run (``dry_run=True``): the shield sends no state-changing command (reads still
happen); nothing is fired, XRD is not requested, and every record comes back with
``status="dry_run"``, empty XRD and NaN performance.

Units: temperatures K, masses g, times s (lab clock), rates K/min, mill time h.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from synthgap.envs.chemistry import Recipe, load_system
from synthgap.envs.lab.frontend import Lab
from synthgap.envs.lab.records import SampleRecord

from .backend import HardwareBackend, HardwareLabError
from .campaign_state import CampaignState, ScaledClock, finished_records, record_from_dict, record_to_dict
from .config import LabConfig, LabSettings, load_lab_file
from .errors import ConfigError
from .journal import Journal
from .lab_shield import LabShield

__all__ = ["HardwareLab", "HardwareLabError", "LabSettings", "LabShield", "finished_records", "load_lab_file",
           "record_from_dict", "record_to_dict"]


class HardwareLab(Lab):
    """The lab front-end on real (or emulated) instruments; see the module docstring.

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

    backend: HardwareBackend

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
        self._journal_closed = False
        system = load_system(self.settings.system)
        #: the lab clock, lab s (see ``clock``)
        self.clock: Callable[[], float] = clock if clock is not None else ScaledClock(self.settings.time_scale)
        backend = HardwareBackend(config, self.settings, self.journal, clock=self.clock, dry_run=dry_run,
                                  system=system, campaign_id=self.campaign.campaign_id)
        super().__init__(backend, sample_ids=self.campaign.next_sample_id)
        self.default_tag = "DRY-RUN" if dry_run else ""
        try:
            self.journal.append("lab_opened", campaign_id=self.campaign_id, dry_run=self.dry_run,
                                source=str(config.source) if config.source else None, system=self.system.name,
                                time_scale=self.settings.time_scale)
            backend.open()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the watchdog, close every port and the journal (idempotent)."""
        super().close()
        if not self._journal_closed:
            self._journal_closed = True
            self.journal.append("lab_closed", campaign_id=self.campaign_id)
            self.journal.close()

    def __enter__(self) -> HardwareLab:
        return self

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

    # ------------------------------------------------------------------ campaign and replay
    @property
    def campaign_id(self) -> str:
        """The campaign's id (continued from the journal), 8 hex digits."""
        return self.campaign.campaign_id

    def replay(self, records: Sequence[dict[str, Any]]) -> None:
        """Queue journaled records: the next ``run_recipe`` calls return them, in order,
        without touching an instrument (the recipe must match the journaled one)."""
        self.campaign.queue_replay(records)

    @property
    def replaying(self) -> bool:
        """True while journaled records are still queued for :meth:`run_recipe`."""
        return self.campaign.replaying

    def run_recipe(self, recipe: Recipe) -> SampleRecord:
        """Make and measure one sample on the instruments (or return the next journaled one
        while replaying); returns when it is finished.

        Raises:
            LabInputError: the recipe is invalid or outside the lab's limits (nothing done).
            HardwareLabError: an instrument failed or the shield refused; the lab was
                emergency-stopped (furnace to its safe temperature) first.
        """
        self._check_recipe(recipe)
        if self.campaign.replaying:
            rec = self.campaign.next_replayed(recipe)
            self.journal.append("experiment_replayed", experiment_id=rec.sample_id)
            self.records[rec.sample_id] = rec
            return rec
        return super().run_recipe(recipe)

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
        self.backend.guard("recover", self.backend.cool_to_safe)

    def emergency_stop(self, reason: str) -> bool:
        """Furnace to its safe temperature, stations stopped; re-opens a lost furnace port
        for up to ``reconnect_s``. Never raises; True once the safe setpoint was sent."""
        return self.backend.emergency_stop(reason)

    def reset_emergency_stop(self, operator: str, reason: str) -> bool:
        """Clear the shield's latched emergency stop (journaled with ``operator`` and ``reason``);
        see :meth:`~synthgap.hardware.shield.SafetyShield.reset_emergency_stop`."""
        return self.shield.reset_emergency_stop(operator, reason)
