"""The direct backend: the lab without an event queue, one sample after the other.

:class:`DirectBackend` executes the front-end's steps at once, advancing its clock by
nominal durations: no station queues, no breakdowns, no precursor lots. It is the
benchmark's lab (:class:`~synthgap.agents.evaluator.Evaluator` runs every experiment on it)
and the fast lab for envs. What it models:

* a furnace offset per firing, N(0, ``offset_sd_K``), shifting the whole programme in
  proportion to its height above ambient (0 at ambient, full at the top setpoint), plus
  per-step temperature noise N(0, ``trace_noise_sd_K``) on the sample; the thermocouple
  (what the furnace logs) follows the setpoint with that noise, not the offset;
* the chemistry of :func:`synthgap.envs.chemistry.fire` on the programme's steps
  (:mod:`synthgap.envs.chemistry.discretisation`), starting from the weighed doses;
* measurement: the lab's measurement model (:mod:`synthgap.envs.lab.measurement`, the
  twin's and the emulators' too);
* lab time: ``LOADING_S`` (weighing and loading) + milling + the programme +
  ``MEASURING_S`` (XRD and property): :func:`lab_hours` of a recipe;
* a live furnace session (``Lab.open_furnace``): the furnace's thermal model
  (:class:`~synthgap.envs.lab.thermal.FurnaceThermalModel`: lag, overshoot, drift; its
  thermocouple reads a calibration offset N(0, ``offset_sd_K``) above the sample), stepped
  every ``CONTROL_STEP_S``, and the chemistry continued interval by interval
  (:class:`~synthgap.envs.chemistry.incremental.IncrementalFiring`; the load's mass loss is
  the thermogravimetric reading).

Random draws, in order, from the one generator: per firing the offset (1 draw) and the step
noise (one per step); per characterisation the property noise (1) and the XRD noise (one
per solid).

Units: lab clock s, temperatures K, masses g, milling h.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

import numpy as np

from synthgap.envs.chemistry import ChemicalSystem, Recipe, RecipeBatch, TemperatureTrace, fire, network_for
from synthgap.envs.chemistry.discretisation import is_dwell, segment_steps
from synthgap.envs.chemistry.firing import FiredSamples
from synthgap.envs.chemistry.incremental import IncrementalFiring
from synthgap.envs.chemistry.recipe import ROOM_TEMPERATURE
from synthgap.envs.chemistry.stoichiometry import amounts_from_masses
from synthgap.envs.chemistry.system_model import per_structure

from .backend import BackendKind, Dose, SequentialScheduler, immediate
from .measurement import MeasurementModel, lab_measurement
from .records import (
    Characterisation,
    FurnaceLog,
    FurnaceReadings,
    Programme,
    SampleRecord,
    SampleStatus,
    SampleTruth,
    Segment,
)
from .session_furnace import Session as _Session
from .session_furnace import control_grid, kinetic_chunks
from .session_furnace import session as _session
from .thermal import FURNACE_OFFSET_SD_K, FurnaceParams, FurnaceThermalModel
from .validation import LabCaps

__all__ = ["DirectBackend", "LOADING_S", "MEASURING_S", "TRACE_NOISE_SD_K", "lab_hours", "programme_steps",
           "shifted_programme"]

LOADING_S = 1800.0  # s, weighing and loading a sample (assumption, +-50 %: a robot cell's cycle)
MEASURING_S = 3600.0  # s, XRD scan and property measurement (assumption, +-50 %)
TRACE_NOISE_SD_K = 3.0  # K, sample temperature noise per step (assumption: a furnace's +-3 K uniformity)
BATCH_MASS_G = 2.0  # g of target a recipe is weighed for (the twin's default)


def lab_hours(recipes: RecipeBatch | Recipe) -> np.ndarray | float:
    """Lab time of recipes on this backend, h: loading + milling + ramp + dwell + cooling + measuring."""
    handling = (LOADING_S + MEASURING_S) / 3600.0
    r = recipes
    span = r.dwell_temperature - ROOM_TEMPERATURE
    hours = r.milling_time + span / r.ramp_rate / 60.0 + r.dwell_time + span / r.cooling_rate / 60.0 + handling
    return float(hours) if isinstance(recipes, Recipe) else hours


@lru_cache(maxsize=4096)
def programme_steps(programme: Programme) -> tuple[np.ndarray, np.ndarray]:
    """The programmed temperature (S,) K and step lengths (S,) s of ``programme``: each
    segment in :func:`~synthgap.envs.chemistry.discretisation.segment_steps` equal steps at
    their midpoints (a recipe's programme gives exactly
    :func:`~synthgap.envs.chemistry.programme_trace`'s steps). Cached: read-only arrays."""
    temps, dts = [], []
    for s in programme.segments:
        n = segment_steps(s.start_K, s.end_K)
        u = (np.arange(n) + 0.5) / n
        temps.append(np.full(n, s.start_K) if is_dwell(s.start_K, s.end_K) else s.start_K + (s.end_K - s.start_K) * u)
        dts.append(np.full(n, s.duration_s / n))
    set_K, dt = np.concatenate(temps), np.concatenate(dts)
    set_K.flags.writeable = dt.flags.writeable = False
    return set_K, dt


def shifted_programme(programme: Programme, offset_K: float, noise_K: np.ndarray | None = None,
                      ambient_K: float = ROOM_TEMPERATURE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a furnace with calibration offset ``offset_K`` (K) does to ``programme``.

    The offset scales with the height above ambient (0 at ambient, full at the top
    setpoint), so the sample still starts and ends at ambient; ``noise_K`` (S,) K is step
    noise on the sample, scaled the same way. Returns the sample's temperature (S,) K, the
    thermocouple's (S,) K (it follows the setpoint and sees the noise, not the offset) and
    the step lengths (S,) s.
    """
    set_K, dt = programme_steps(programme)
    height = (set_K - ambient_K) / max(programme.max_setpoint_K - ambient_K, 1e-9)
    noise = np.zeros(set_K.size) if noise_K is None else np.asarray(noise_K, dtype=float)
    sample_K = np.maximum(set_K + (offset_K + noise) * height, ambient_K)
    return sample_K, set_K + noise * height, dt


@per_structure(maxsize=64)
def _network_order(system: ChemicalSystem) -> list[int]:
    solids = list(system.solids)
    return [solids.index(p) for p in network_for(system).solids]


class DirectBackend(SequentialScheduler):
    """The lab without an event queue (see the module docstring).

    Args:
        system: the chemical system.
        seed: seed of the one random generator (ignored when ``rng`` is given).
        rng: the generator to draw from (the benchmark passes one per experiment).
        offset_sd_K: furnace offset per firing, K.
        trace_noise_sd_K: sample temperature noise per step, K.
        measurement: XRD and property noise, XRD detection limit (default the lab's).
        caps: the lab's own limits (default: the furnace maximum).
        batch_mass_g: g of target each recipe is weighed for.
        furnace: the furnace's thermal model in a live session (default :class:`FurnaceParams`;
            its offset is drawn per session from N(0, ``offset_sd_K``)).
        truth_system: the chemistry the lab really has (a drawn world); default ``system``.
    """

    kind: BackendKind = "direct"
    finished_status: SampleStatus = "done"
    ambient_K = ROOM_TEMPERATURE
    n_furnaces = 1

    def __init__(self, system: ChemicalSystem, seed: int = 0, *, rng: np.random.Generator | None = None,
                 offset_sd_K: float = FURNACE_OFFSET_SD_K, trace_noise_sd_K: float = TRACE_NOISE_SD_K,
                 measurement: MeasurementModel | None = None, caps: LabCaps | None = None,
                 batch_mass_g: float = BATCH_MASS_G, furnace: FurnaceParams | None = None,
                 truth_system: ChemicalSystem | None = None) -> None:
        super().__init__()
        for name, v in (("offset_sd_K", offset_sd_K), ("trace_noise_sd_K", trace_noise_sd_K)):
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0 K, got {v!r}")
        self.system = system
        #: the chemistry this lab really has (a drawn world): PRIVILEGED
        self.truth_system = truth_system if truth_system is not None else system
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        self.offset_sd_K = float(offset_sd_K)
        self.trace_noise_sd_K = float(trace_noise_sd_K)
        self.measurement = measurement if measurement is not None else lab_measurement()
        self.caps = caps if caps is not None else LabCaps()
        self.batch_mass_g = float(batch_mass_g)
        self.furnace = furnace if furnace is not None else FurnaceParams()
        self.truth: dict[str, SampleTruth] = {}
        self.firings: list[FurnaceLog] = []
        self._clock = 0.0
        self._solids = network_for(system).solids
        self._order = _network_order(system)  # system order -> network order
        self._doses: dict[str, dict[str, float]] = {}
        self._milled: dict[str, float] = {}
        self._n_firings = 0

    @property
    def now(self) -> float:
        """Lab clock, s."""
        return self._clock

    def idle_until(self, until: float) -> None:
        self._clock = max(self._clock, float(until))

    def open_sample(self, rec: SampleRecord) -> None:
        self.truth[rec.sample_id] = SampleTruth()
        self._doses[rec.sample_id] = {}

    def close_sample(self, rec: SampleRecord) -> None:
        self._doses.pop(rec.sample_id, None)
        self._milled.pop(rec.sample_id, None)

    # ------------------------------------------------------------------ instruments
    @immediate
    def transfer(self, rec: SampleRecord, src: str, dst: str) -> None:
        if (src, dst) == ("rack", "balance"):
            self._clock += LOADING_S

    @immediate
    def dispense(self, rec: SampleRecord, precursor: str, mass_g: float) -> Dose:
        doses = self._doses[rec.sample_id]
        doses[precursor] = doses.get(precursor, 0.0) + mass_g
        t = self.truth[rec.sample_id]
        t.dispensed_g[precursor] = doses[precursor]
        rec.instruments["balance"] = "balance-0"
        return Dose(mass_g)

    @immediate
    def mill(self, rec: SampleRecord, hours: float) -> None:
        self._milled[rec.sample_id] = hours
        self._clock += hours * 3600.0
        rec.instruments["mill"] = "mill-0"

    @immediate
    def press(self, rec: SampleRecord) -> None:
        rec.instruments["press"] = "press-0"

    @immediate
    def fire(self, recs: Sequence[SampleRecord], programme: Programme, furnace: int | None) -> FurnaceLog:
        rng = self.rng
        offset = float(rng.normal(0.0, self.offset_sd_K, 1)[0])
        set_K, _ = programme_steps(programme)
        noise = rng.normal(0.0, self.trace_noise_sd_K, (1, set_K.size))[0]
        sample_K, thermocouple_K, dt = shifted_programme(programme, offset, noise, self.ambient_K)
        t_end = np.cumsum(dt)
        self._n_firings += 1
        started = self._clock
        self._clock += float(t_end[-1])
        log = FurnaceLog(f"F{self._n_firings:05d}", 0, tuple(r.sample_id for r in recs), programme, "ok", started,
                         self._clock, t_end, set_K, thermocouple_K)
        self.firings.append(log)
        self._react(recs, programme, sample_K, dt, offset)
        return log

    def _react(self, recs: Sequence[SampleRecord], programme: Programme, sample_K: np.ndarray, dt: np.ndarray,
               offset: float) -> None:
        """Fire the load's chemistry on the true sample temperatures; fill in each truth."""
        system = self.truth_system
        recipes = [replace(r.recipe, milling_time=self._milled.get(r.sample_id, 0.0), atmosphere=programme.atmosphere)
                   for r in recs]
        batch = RecipeBatch.from_recipes(system, recipes, validate=False)  # checked by the front-end
        initial = self._initial(recs)
        B = len(recs)
        trace = TemperatureTrace(np.repeat(sample_K[None, :], B, axis=0), np.repeat(dt[None, :], B, axis=0))
        fired = fire(system, batch, trace=trace, initial=initial)
        for b, r in enumerate(recs):
            # truth in the twin's convention: the thermocouple reads offset_K above the sample
            self._fill_truth(r.sample_id, initial[b], fired, b, -offset, np.cumsum(dt), sample_K, programme)
            r.instruments["furnace"] = "furnace-0"

    def _initial(self, recs: Sequence[SampleRecord]) -> np.ndarray:
        """(B, P) mol per mol of target intended in each crucible, from its weighed doses."""
        return np.stack([amounts_from_masses(self.system, r.recipe.target, self._doses[r.sample_id],
                                             self.batch_mass_g)[self._order] for r in recs])

    def _fill_truth(self, sid: str, initial: np.ndarray, fired: FiredSamples, b: int, offset_K: float,
                    time_s: np.ndarray, sample_K: np.ndarray, programme: Programme) -> None:
        t = self.truth[sid]
        dwell = programme.dwell_mask(time_s)
        t.initial_mol = dict(zip(self._solids, initial.tolist(), strict=True))
        t.offset_K, t.trace_time_s, t.trace_K = offset_K, time_s, sample_K
        t.dwell_mean_K = float(sample_K[dwell].mean()) if dwell.any() else math.nan
        t.phase_fractions = dict(zip(self._solids, fired.phase_fractions[b].tolist(), strict=True))
        t.target_fraction = float(fired.target_fraction[b])
        t.grain_size_um = float(fired.grain_size[b])
        t.performance = float(fired.performance[b])

    @immediate
    def characterise(self, rec: SampleRecord) -> Characterisation:
        t, m, rng = self.truth[rec.sample_id], self.measurement, self.rng
        performance = m.property(t.performance, rng.standard_normal())
        true = np.array([t.phase_fractions.get(p, 0.0) for p in self._solids])
        fractions = m.xrd(true, rng.standard_normal(len(self._solids)))
        self._clock += MEASURING_S
        rec.instruments.update(xrd="xrd-0", property="property-0")
        return Characterisation(dict(zip(self._solids, fractions.tolist(), strict=True)), performance,
                                "xrd-0", "property-0")

    # ------------------------------------------------------------------ a furnace session
    @immediate
    def open_firing(self, recs: Sequence[SampleRecord], atmosphere: str, furnace: int | None) -> _Session:
        offset = float(self.rng.normal(0.0, self.offset_sd_K))
        model = FurnaceThermalModel(self.furnace.with_offset(offset), self.rng)
        model.reset(self.ambient_K)
        recipes = [replace(r.recipe, milling_time=self._milled.get(r.sample_id, 0.0)) for r in recs]
        chem = IncrementalFiring(self.truth_system, recipes, self._initial(recs), atmosphere)
        self._n_firings += 1
        for r in recs:
            r.instruments["furnace"] = "furnace-0"
            self.truth[r.sample_id].offset_K = offset
        return _Session(f"F{self._n_firings:05d}", list(recs), atmosphere, model, chem, offset, self._clock)

    @immediate
    def continue_firing(self, handle: object, segments: tuple[Segment, ...]) -> FurnaceReadings:
        s = _session(handle)
        set_K, dt = control_grid(segments)
        true_K, tc_K = s.model.simulate(set_K, dt)
        s.chem.react(*kinetic_chunks(true_K, dt))
        t_end = s.t_end + np.cumsum(dt)
        s.log_steps(t_end, set_K, tc_K, true_K, dt, segments)
        self._clock += float(dt.sum())
        return FurnaceReadings(t_end, set_K, tc_K, float(s.load_mass_loss()))

    @immediate
    def close_firing(self, handle: object) -> FurnaceLog:
        s = _session(handle)
        log = s.furnace_log(self._clock)
        self.firings.append(log)
        fired = s.chem.outcome()
        for b, r in enumerate(s.recs):
            self._fill_truth(r.sample_id, s.chem.initial[b], fired, b, s.offset, s.time, s.true_K,
                             Programme(tuple(s.segments), s.atmosphere))
        return log

    def close(self) -> None:
        """Nothing to free."""
