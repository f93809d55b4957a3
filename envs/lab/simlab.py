"""SimLab: a SimPy discrete-event twin of a self-driving solid-state synthesis lab.

Stations are :class:`~synthgap.envs.lab.station.Station`s (``simpy.Resource`` rules:
FIFO queues, identical units; one event per use) with gamma-distributed durations (robot
arm, balance, ball mills, press, XRD, property station); furnaces are worker
processes pulling firing jobs (loads of one or more crucibles sharing one programme)
from one shared queue, so a job goes to the first furnace that frees up (or to the
furnace it is pinned to).

Furnace physics comes from :class:`~synthgap.envs.lab.thermal.FurnaceThermalModel`
(one model per furnace). Each furnace's calibration offset starts at a random value and
wanders as a random walk (K per sqrt(day)); the model adds overshoot, OU drift and
thermocouple noise. The kinetics see the TRUE sample temperature; agents see the
setpoint programme and the logged thermocouple trace.

Breakdowns: each furnace fails after an exponential time (calendar time, mean
``mtbf_h``) and is repaired for ``repair_h``; the failure is a SimPy interrupt of the
furnace's worker. **A load being fired when its furnace breaks is lost**: its samples
finish with status ``"failed"`` (a half-fired pellet cannot be re-fired as new); the
agent may resubmit. A furnace that breaks while idle is repaired before it takes a job.

Reference runs: every ``reference_every`` sample firings (and before its first one) a
furnace runs a slow ramp through the melting points of Al, Ag and Au; the thermocouple
reading at each melt is logged (:class:`~synthgap.envs.lab.records.ReferenceReading`).
:mod:`synthgap.envs.lab.calibration` fits offsets from these readings.

Precursor lots: each precursor comes in lots of ``samples_per_lot`` dispenses with a
purity (mass fraction of the named phase) and a hygroscopicity; the water uptake of a
dispensed powder is ``hygroscopicity * humidity`` (mass fraction), with the lab
humidity a daily sinusoid plus noise. What reaches the chemistry (``initial=`` of
:func:`synthgap.envs.chemistry.fire`, mol per mol of target intended):
``dispensed * (1 - water) * purity / M`` of the precursor, and
``dispensed * (1 - water) * (1 - purity) / M_imp`` of its impurity phase: the other
solid of the system with the same cations (BaCO3 -> BaO, MnO2 -> Mn2O3, Li2CO3 ->
Li2O); precursors without one carry an inert impurity that XRD does not see. Water
leaves on heating.

Chemistry is evaluated in batches (one ``fire`` call per group of samples with the
same number of trace steps) when records are handed out (end of ``run``,
``run_recipe``, ``characterise``, ``telemetry``); the XRD and property noise are drawn
at measurement time, so the random stream, and hence every record, does not depend on
when the batch is evaluated.

Randomness: ONE ``numpy.random.Generator`` (``np.random.default_rng(seed)``) for
everything; the same seed gives the same campaign record for record.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np
import simpy

from synthgap.envs.chemistry import (
    ChemicalSystem,
    Recipe,
    RecipeBatch,
    TemperatureTrace,
    fire,
    load_system,
    network_for,
)
from synthgap.envs.chemistry.discretisation import (
    COOL_STEPS,
    DWELL_STEPS,
    RAMP_STEPS,
    SETTLE_STEPS,
    is_dwell,
    segment_steps,
)
from synthgap.envs.chemistry.stoichiometry import amount_per_target, precursor_masses

from .firing_queue import FiringQueue
from .measurement import MeasurementModel, lab_measurement
from .protocol import LabInputError
from .records import (
    Characterisation,
    FurnaceLog,
    Programme,
    ReferenceReading,
    SampleRecord,
    SampleStatus,
    Segment,
    write_records,
)
from .station import Station
from .thermal import FURNACE_OFFSET_SD_K, FurnaceParams, FurnaceThermalModel
from .validation import LabCaps, check_dose, check_load, check_milling, check_programme, check_recipe

__all__ = ["LabParams", "SimLab", "STATIONS", "REFERENCE_STANDARDS", "firing_grid",
           "reference_programme", "random_lab_recipes"]

DAY = 86400.0  # s
STATIONS = ("robot", "balance", "mill", "press", "xrd", "property")
#: melting-point standards of the reference runs: name -> melting point, K.
REFERENCE_STANDARDS = {"Al": 933.47, "Ag": 1234.93, "Au": 1337.33}
REFERENCE_STEP_S = 60.0  # s, logging step of the slow reference ramp
REFERENCE_FAST_RATE, REFERENCE_SLOW_RATE = 10.0, 2.0  # K/min


@dataclass(frozen=True)
class LabParams:
    """All parameters of the twin (durations in s, rates as stated).

    Attributes:
        stochastic: draw station durations and breakdown/repair times at random
            (gamma, coefficient of variation ``duration_cv``; exponential failures);
            False: every duration is its mean, failures every ``mtbf_h`` exactly.
        duration_cv: coefficient of variation of station durations.
        robot_move_s: one robot-arm transfer, s.
        dispense_s: dispensing and weighing one precursor, s.
        mill_overhead_s: loading/unloading a mill jar, s (plus the milling time).
        press_s: pressing a pellet, s.
        furnace_load_s: loading plus unloading a furnace, s (plus the programme).
        xrd_s: one XRD scan, s.
        property_s: one property measurement, s.
        capacity: station -> number of identical instruments.
        batch_mass_g: target mass a recipe is weighed for, g.
        dispense_rel_sd: relative sd of the dispensed mass around the commanded one.
        balance_sd_g: balance reading noise, g.
        humidity_mean, humidity_amplitude, humidity_sd: lab relative humidity, a daily
            sinusoid (peak at 15:00 lab time) plus white noise, fraction.
        hygroscopicity: water mass fraction a powder takes up at 100 % humidity (each
            lot draws a factor uniform in [0.5, 1.5] of it).
        purity_min: lot purities are uniform in [purity_min, 1].
        samples_per_lot: dispenses per precursor lot.
        furnace: base physical parameters of every furnace (offset replaced per furnace).
        offset_sd_K: sd of the furnaces' initial calibration offsets, K.
        furnace_offsets_K: explicit initial offsets, K (one per furnace), or None to draw.
        offset_walk_K_per_sqrt_day: random-walk rate of the offsets.
        mtbf_h: mean time between furnace failures (calendar), h; inf: never.
        repair_h: mean repair time, h.
        reference_every: sample firings between reference runs of a furnace; 0: none.
        measurement: XRD and property noise and the XRD detection limit
            (:mod:`synthgap.envs.lab.measurement`, the one model every lab uses).
        log_events: keep an ``(event, time)`` log in ``SimLab.log`` (tests, debugging).
    """

    stochastic: bool = True
    duration_cv: float = 0.2
    robot_move_s: float = 30.0
    dispense_s: float = 60.0
    mill_overhead_s: float = 300.0
    press_s: float = 120.0
    furnace_load_s: float = 300.0
    xrd_s: float = 1800.0
    property_s: float = 600.0
    capacity: tuple[tuple[str, int], ...] = (
        ("robot", 1), ("balance", 1), ("mill", 2), ("press", 1), ("xrd", 1), ("property", 1))
    batch_mass_g: float = 2.0
    dispense_rel_sd: float = 0.01
    balance_sd_g: float = 1e-4
    humidity_mean: float = 0.45
    humidity_amplitude: float = 0.15
    humidity_sd: float = 0.03
    hygroscopicity: float = 0.03
    purity_min: float = 0.97
    samples_per_lot: int = 50
    furnace: FurnaceParams = field(default_factory=lambda: FurnaceParams(offset_K=0.0))
    offset_sd_K: float = FURNACE_OFFSET_SD_K
    furnace_offsets_K: tuple[float, ...] | None = None
    offset_walk_K_per_sqrt_day: float = 0.5
    mtbf_h: float = 60 * 24.0
    repair_h: float = 8.0
    reference_every: int = 10
    measurement: MeasurementModel = field(default_factory=lab_measurement)
    log_events: bool = False

    def __post_init__(self) -> None:
        positive = ("robot_move_s", "dispense_s", "mill_overhead_s", "press_s", "furnace_load_s",
                    "xrd_s", "property_s", "batch_mass_g", "mtbf_h", "repair_h")
        for name in positive:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and not math.isnan(v)):
                raise LabInputError(f"LabParams.{name} must be > 0, got {v!r}")
        for name in ("duration_cv", "dispense_rel_sd", "balance_sd_g", "humidity_sd",
                     "hygroscopicity", "offset_sd_K", "offset_walk_K_per_sqrt_day"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise LabInputError(f"LabParams.{name} must be finite and >= 0, got {v!r}")
        if not isinstance(self.measurement, MeasurementModel):
            raise LabInputError(f"LabParams.measurement must be a MeasurementModel, got {self.measurement!r}")
        if not 0 < self.purity_min <= 1:
            raise LabInputError(f"LabParams.purity_min must be in (0, 1], got {self.purity_min!r}")
        if self.samples_per_lot < 1 or self.reference_every < 0:
            raise LabInputError("LabParams.samples_per_lot must be >= 1 and reference_every >= 0")
        caps = dict(self.capacity)
        for s in STATIONS:
            if caps.get(s, 0) < 1:
                raise LabInputError(f"LabParams.capacity needs >= 1 {s!r}, got {caps.get(s)!r}")


# midpoints of n equal parts of a ramp, as fractions of it
_MIDPOINTS = {n: (np.arange(n) + 0.5) / n for n in {RAMP_STEPS, COOL_STEPS}}


def firing_grid(programme: Programme, tau_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Working setpoints (S,) K and step lengths (S,) s at which a firing is simulated.

    The steps of :mod:`synthgap.envs.chemistry.discretisation`: ramps get ``RAMP_STEPS``
    steps (rising) or ``COOL_STEPS`` (falling), each holding the ramp's midpoint value; a
    dwell's ``DWELL_STEPS`` are ``SETTLE_STEPS`` short steps over the first
    ``min(4 tau, dwell / 2)`` (the overshoot) and the rest over what is left. A standard
    three-segment programme gives 64 steps, which the kinetics take as is.
    """
    segments = programme.segments
    counts = [segment_steps(s.start_K, s.end_K) for s in segments]
    sp = np.empty(sum(counts))
    dt = np.empty(sp.size)
    k = 0
    for s, n in zip(segments, counts, strict=True):
        if is_dwell(s.start_K, s.end_K):
            settle = min(4.0 * tau_s, 0.5 * s.duration_s)
            sp[k:k + n] = s.start_K
            dt[k:k + SETTLE_STEPS] = settle / SETTLE_STEPS
            dt[k + SETTLE_STEPS:k + n] = (s.duration_s - settle) / (DWELL_STEPS - SETTLE_STEPS)
        else:
            sp[k:k + n] = s.start_K + (s.end_K - s.start_K) * _MIDPOINTS[n]
            dt[k:k + n] = s.duration_s / n
        k += n
    return sp, dt


def reference_programme(ambient_K: float, top_K: float) -> Programme:
    """Fast ramp to 50 K below the lowest standard, slow ramp through all, short dwell, cool."""
    lo = min(REFERENCE_STANDARDS.values()) - 50.0
    return Programme((
        Segment("ramp", ambient_K, lo, (lo - ambient_K) * 60.0 / REFERENCE_FAST_RATE),
        Segment("ramp", lo, top_K, (top_K - lo) * 60.0 / REFERENCE_SLOW_RATE),
        Segment("dwell", top_K, top_K, 600.0),
        Segment("cool", top_K, ambient_K, (top_K - ambient_K) * 60.0 / REFERENCE_FAST_RATE),
    ))


@lru_cache(maxsize=16)
def reference_grid(programme: Programme, tau_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Setpoints (S,) K and steps (S,) s of a reference run: fine steps (``REFERENCE_STEP_S``)
    on the slow ramp through the standards, :func:`firing_grid` elsewhere. Cached: the
    arrays are shared by every run of the programme, never modify them."""
    sps, dts = [], []
    for k, s in enumerate(programme.segments):
        if k == 1:
            n = max(int(math.ceil(s.duration_s / REFERENCE_STEP_S)), 1)
            u = (np.arange(n) + 0.5) / n
            sps.append(s.start_K + (s.end_K - s.start_K) * u)
            dts.append(np.full(n, s.duration_s / n))
        else:
            sp, dt = firing_grid(Programme((s,)), tau_s)
            sps.append(sp)
            dts.append(dt)
    return np.concatenate(sps), np.concatenate(dts)


@dataclass
class _Lot:
    lot_id: str
    purity: float
    hygroscopicity: float
    uses: int = 0


@dataclass(eq=False)
class _Job:
    firing_id: str
    samples: list[_Sample]
    programme: Programme
    furnace: int | None
    done: simpy.Event
    queued_s: float


@dataclass(eq=False)
class _Sample:
    rec: SampleRecord
    initial: np.ndarray
    milling_time: float = 0.0
    fired: bool = False
    kin_T: np.ndarray | None = None
    kin_dt: np.ndarray | None = None
    xrd_noise: np.ndarray | None = None
    perf_noise: float = 0.0
    finalised: bool = False
    dispensed: bool = False


def _may_fire(job: _Job, furnace: int) -> bool:
    """A job pinned to a furnace waits for that one; any other goes to any furnace."""
    return job.furnace is None or job.furnace == furnace


class SimLab:
    """SimPy twin of a self-driving lab (implements :class:`~synthgap.envs.lab.protocol.Lab`).

    Args:
        system: a ChemicalSystem or a bundled system name.
        n_furnaces: number of furnaces (>= 1).
        seed: seed of the one random generator.
        config: all other parameters (:class:`LabParams`).

    Attributes:
        system: the chemical system.
        log: ``(event, lab time s)`` tuples when ``config.log_events``.
        firings: every :class:`FurnaceLog` (sample and reference runs), in finishing order.
        usage: ``(station, instrument id, job, start s, end s)`` for every instrument use.
        queue_log: ``(time s, station, queue length)`` at every queue change.

    Example:
        >>> lab = SimLab("BaTiO3", n_furnaces=2, seed=1)
        >>> rec = lab.run_recipe(Recipe("BaTiO3", ("BaCO3", "TiO2"), dwell_temperature=1473))
        >>> rec.status, rec.xrd_phase_fractions["BaTiO3"] > 0.5
        ('done', True)
    """

    def __init__(self, system: ChemicalSystem | str, n_furnaces: int = 4, seed: int = 0,
                 config: LabParams | None = None) -> None:
        if isinstance(system, str):
            system = load_system(system)
        if not isinstance(n_furnaces, (int, np.integer)) or n_furnaces < 1:
            raise LabInputError(f"n_furnaces must be an integer >= 1, got {n_furnaces!r}")
        config = config if config is not None else LabParams()
        if config.furnace_offsets_K is not None and len(config.furnace_offsets_K) != n_furnaces:
            raise LabInputError(f"furnace_offsets_K has {len(config.furnace_offsets_K)} values "
                                f"for {n_furnaces} furnaces")
        self.system = system
        self.config = config
        self.n_furnaces = int(n_furnaces)
        self.rng = np.random.default_rng(seed)
        self.env = simpy.Environment()
        self.log: list[tuple[str, float]] = []
        self.firings: list[FurnaceLog] = []
        self.firing_truth: list[dict[str, Any]] = []
        self.usage: list[tuple[str, str, str, float, float]] = []
        self.queue_log: list[tuple[float, str, int]] = []
        self.records: dict[str, SampleRecord] = {}

        net = network_for(system)
        self._net = net
        self._solid_index = {n: i for i, n in enumerate(net.solids)}
        self._impurity = self._impurity_phases()
        self._samples: dict[str, _Sample] = {}
        self._unreported: list[SampleRecord] = []
        self._pending_fire: list[_Sample] = []
        self._outstanding = 0
        self._drained: simpy.Event | None = None
        self._n_samples = 0
        self._n_firings = 0

        caps = dict(config.capacity)
        self._stations = {s: Station(self.env, s, caps[s]) for s in STATIONS}
        self._lots = {p: self._new_lot(p, 0) for p in system.precursors}

        # Furnaces: one thermal model each; offsets drawn (or given), then random-walked.
        if config.furnace_offsets_K is not None:
            offsets = [float(o) for o in config.furnace_offsets_K]
        else:
            offsets = (config.offset_sd_K * self.rng.standard_normal(self.n_furnaces)).tolist()
        self._offset = offsets
        self._offset_time = [0.0] * self.n_furnaces
        self._models = [FurnaceThermalModel(replace(config.furnace, offset_K=o), self.rng)
                        for o in offsets]
        self.max_temperature_K = min(m.params.max_temperature_K for m in self._models)
        #: what this lab refuses beyond the recipe and programme limits: its furnaces' maximum.
        self.caps = LabCaps(max_temperature_K=self.max_temperature_K)
        self._since_reference = [config.reference_every] * self.n_furnaces
        self._jobs: FiringQueue[_Job] = FiringQueue(self.env, _may_fire)
        self._workers = [self.env.process(self._furnace_worker(f)) for f in range(self.n_furnaces)]
        if math.isfinite(config.mtbf_h):
            for f in range(self.n_furnaces):
                self.env.process(self._breaker(f))

    # ------------------------------------------------------------------ public API
    @property
    def now(self) -> float:
        """Lab clock, s."""
        return float(self.env.now)

    def furnace_offsets(self) -> list[float]:
        """The furnaces' current TRUE offsets, K (simulator truth, for tests and plots)."""
        return list(self._offset)

    def submit(self, recipe: Recipe, tag: str = "") -> str:
        """Queue a sample for the whole chain; return its id (raises before queuing)."""
        self._check_recipe(recipe)
        st = self._new_sample(recipe, tag)
        self._outstanding += 1
        if self._drained is None or self._drained.triggered:
            self._drained = self.env.event()
        self.env.process(self._p_chain(st))
        return st.rec.sample_id

    def submit_load(self, recipes: Sequence[Recipe], tags: Sequence[str] | None = None) -> list[str]:
        """Queue samples that share one furnace load (one programme); return their ids.

        Each sample is weighed, milled and pressed on its own; the load is fired once
        all of them are ready, in one furnace run with the first recipe's programme.

        Raises:
            LabInputError: the recipes' programmes differ, or a recipe is invalid.
        """
        recipes = list(recipes)
        tags = list(tags) if tags is not None else [""] * len(recipes)
        check_load(recipes, tags)
        programme = Programme.from_recipe(recipes[0])
        for r in recipes:
            self._check_recipe(r)
            if Programme.from_recipe(r) != programme or r.atmosphere != recipes[0].atmosphere:
                raise LabInputError("recipes of one load must share the firing programme and atmosphere; "
                                    f"{r.target} differs from {recipes[0].target}")
        members = [self._new_sample(r, t) for r, t in zip(recipes, tags, strict=True)]
        self._outstanding += len(members)
        if self._drained is None or self._drained.triggered:
            self._drained = self.env.event()
        self.env.process(self._p_load_chain(members, programme))
        return [m.rec.sample_id for m in members]

    def run(self, until: float | None = None) -> list[SampleRecord]:
        """Advance until every submitted sample is finished, or lab time ``until`` s.

        Returns the records finished since the last ``run`` that ``run_recipe`` did not
        already return, in finishing order.
        """
        if until is not None:
            if not math.isfinite(until) or until < self.now:
                raise LabInputError(f"until must be a lab time >= now ({self.now} s), got {until!r}")
            if self._outstanding:
                self.env.run(until=self.env.any_of([self._drained,
                                                    self.env.timeout(until - self.now)]))
            else:
                self.env.run(until=until)
        elif self._outstanding:
            self.env.run(until=self._drained)
        self._finalise()
        out, self._unreported = self._unreported, []
        return out

    def run_recipe(self, recipe: Recipe) -> SampleRecord:
        """Make and measure one sample; the clock advances until it is finished."""
        sid = self.submit(recipe)
        st = self._samples[sid]
        while st.rec.status not in ("done", "failed"):
            self.env.step()
        self._finalise()
        self._unreported.remove(st.rec)
        return st.rec

    def new_sample(self, recipe: Recipe, tag: str = "") -> str:
        """Register a sample to be driven step by step (dispense, mill, press, fire, ...)."""
        self._check_recipe(recipe)
        st = self._new_sample(recipe, tag)
        st.rec.status, st.rec.started_s = "running", self.now
        return st.rec.sample_id

    def dispense(self, sample_id: str, precursor: str, mass_g: float) -> float:
        """Dispense ``mass_g`` g of ``precursor``; return the balance reading, g."""
        st = self._sample(sample_id)
        mass_g = check_dose(self.system, precursor, mass_g)
        return self._run_proc(self._p_dispense(st, precursor, mass_g))

    def mill(self, sample_id: str, hours: float) -> None:
        """Ball-mill the sample for ``hours`` h (within the recipe limits)."""
        st = self._sample(sample_id)
        self._run_proc(self._p_mill(st, check_milling(hours)))

    def press(self, sample_id: str) -> None:
        """Press the sample's powder into a pellet."""
        self._run_proc(self._use("press", self._sample(sample_id).rec, self.config.press_s))

    def fire(self, sample_ids: Sequence[str], programme: Programme,
             furnace: int | None = None) -> FurnaceLog:
        """Fire a load of crucibles with one programme (optionally on a given furnace)."""
        samples = [self._sample(s) for s in sample_ids]
        if not samples:
            raise LabInputError("fire needs at least one sample id")
        if len(set(sample_ids)) != len(sample_ids):
            raise LabInputError(f"duplicate sample ids in the load: {list(sample_ids)}")
        self._check_programme(programme, furnace)
        return self._run_proc(self._p_fire(samples, programme, furnace))

    def characterise(self, sample_id: str) -> Characterisation:
        """XRD and property measurement of a fired sample."""
        st = self._sample(sample_id)
        if not st.fired:
            raise LabInputError(f"sample {sample_id!r} has not been fired successfully")
        self._run_proc(self._p_characterise(st))
        self._finalise()
        r = st.rec
        return Characterisation(dict(r.xrd_phase_fractions), r.performance,
                                r.instruments.get("xrd", ""), r.instruments.get("property", ""))

    def telemetry(self, sample_id: str) -> dict:
        """The agent-visible record of a sample so far, as a flat dict (no truth)."""
        st = self._sample(sample_id)
        self._finalise()
        return st.rec.to_row()

    def utilisation(self) -> dict[str, float]:
        """Station -> busy fraction of (capacity x lab time so far); furnaces included."""
        if self.now <= 0:
            return {s: 0.0 for s in (*STATIONS, "furnace")}
        busy: dict[str, float] = {}
        for station, _, job, a, b in self.usage:
            if job != "repair":
                busy[station] = busy.get(station, 0.0) + (b - a)
        caps = dict(self.config.capacity)
        caps["furnace"] = self.n_furnaces
        return {s: busy.get(s, 0.0) / (caps[s] * self.now) for s in (*STATIONS, "furnace")}

    def write(self, out_dir, parquet: bool = True):
        """Write every finished sample, firing and instrument use as tidy tables."""
        self._finalise()
        recs = [r for r in self.records.values() if r.status in ("done", "failed")]
        return write_records(out_dir, recs, self.firings, self.usage, self.firing_truth, parquet)

    # ------------------------------------------------------------------ validation
    def _check_recipe(self, recipe: Recipe) -> None:
        check_recipe(self.system, recipe, self.caps, self.config.batch_mass_g)

    def _check_programme(self, programme: Programme, furnace: int | None) -> None:
        if furnace is not None and not (isinstance(furnace, (int, np.integer))
                                        and 0 <= furnace < self.n_furnaces):
            raise LabInputError(f"furnace must be in 0..{self.n_furnaces - 1}, got {furnace!r}")
        check_programme(programme, self.caps)

    def _sample(self, sample_id: str) -> _Sample:
        try:
            return self._samples[sample_id]
        except KeyError:
            raise LabInputError(f"unknown sample id {sample_id!r}") from None

    # ------------------------------------------------------------------ helpers
    def _run_proc(self, gen: Generator) -> Any:
        proc = self.env.process(gen)
        self.env.run(until=proc)
        return proc.value

    def _event(self, text: str) -> None:
        if self.config.log_events:
            self.log.append((text, float(self.env.now)))

    def _duration(self, mean: float) -> float:
        if not self.config.stochastic or self.config.duration_cv == 0:
            return mean
        k = 1.0 / self.config.duration_cv**2
        return float(self.rng.gamma(k, mean / k))

    def _humidity(self) -> float:
        c = self.config
        day = 2.0 * math.pi * (self.env.now / DAY - 0.375)  # peak at 15:00
        h = c.humidity_mean + c.humidity_amplitude * math.sin(day)
        return min(max(h + c.humidity_sd * float(self.rng.standard_normal()), 0.02), 0.98)

    def _new_lot(self, precursor: str, n: int) -> _Lot:
        c = self.config
        purity = float(self.rng.uniform(c.purity_min, 1.0))
        hyg = c.hygroscopicity * float(self.rng.uniform(0.5, 1.5))
        return _Lot(f"{precursor}-L{n:03d}", purity, hyg)

    def _impurity_phases(self) -> dict[str, str | None]:
        """Precursor -> the other solid with the same cations (its lot impurity), if any."""
        net = self._net
        out: dict[str, str | None] = {}
        cat = {n: frozenset(e for e, _ in zip(net.elements, row, strict=True)
                            if e not in ("O", "C", "H") and row[net.elements.index(e)] > 0)
               for n, row in zip(net.solids, net.solid_elements, strict=True)}
        candidates = [*self.system.precursors,
                      *[s for s in net.solids if s not in self.system.precursors
                        and s not in self.system.targets]]
        for p in self.system.precursors:
            out[p] = next((q for q in candidates if q != p and cat[q] == cat[p]), None)
        return out

    def _new_sample(self, recipe: Recipe, tag: str) -> _Sample:
        self._n_samples += 1
        sid = f"S{self._n_samples:05d}"
        rec = SampleRecord(sid, tag, recipe)
        st = _Sample(rec, np.zeros(len(self._net.solids)), recipe.milling_time)
        self._samples[sid] = st
        self.records[sid] = rec
        return st

    def commanded_masses(self, recipe: Recipe) -> list[tuple[str, float]]:
        """(precursor, g) to weigh for ``config.batch_mass_g`` g of target, excess included."""
        return precursor_masses(self.system, recipe.target, recipe.precursors, self.config.batch_mass_g,
                                recipe.excess)

    def _finish(self, st: _Sample, status: SampleStatus) -> None:
        st.rec.status = status
        st.rec.finished_s = float(self.env.now)
        self._unreported.append(st.rec)
        self._event(f"{st.rec.sample_id} {status}")

    # ------------------------------------------------------------------ processes
    def _use(self, station: str, rec: SampleRecord, mean_s: float) -> Generator:
        """Hold one unit of ``station`` for a stochastic duration around ``mean_s`` s."""
        res = self._stations[station]
        t0 = self.env.now
        unit = res.acquire()
        if not isinstance(unit, int):  # every unit busy: wait in line
            self.queue_log.append((t0, station, len(res.queue)))
            try:
                unit = yield unit
            except BaseException:
                res.cancel(unit)
                raise
            self.queue_log.append((self.env.now, station, len(res.queue)))
        start = self.env.now
        uid = f"{station}-{unit}"
        if self.config.log_events:
            self._event(f"{rec.sample_id} {uid} start")
        try:
            yield self.env.timeout(self._duration(mean_s))
        finally:
            res.release(unit)
        if self.config.log_events:
            self._event(f"{rec.sample_id} {uid} end")
        self.usage.append((station, uid, rec.sample_id, start, float(self.env.now)))
        rec.waits_s[station] = rec.waits_s.get(station, 0.0) + (start - t0)
        rec.instruments[station] = uid

    def _p_chain(self, st: _Sample) -> Generator:
        yield from self._p_prepare(st)
        log = yield from self._p_fire([st], Programme.from_recipe(st.rec.recipe), None)
        yield from self._p_after_firing(st, log)

    def _p_load_chain(self, members: list[_Sample], programme: Programme) -> Generator:
        """Prepare every crucible of a shared load, fire them together, measure each."""
        yield self.env.all_of([self.env.process(self._p_prepare(st)) for st in members])
        log = yield from self._p_fire(members, programme, None)
        yield self.env.all_of([self.env.process(self._p_after_firing(st, log)) for st in members])

    def _p_prepare(self, st: _Sample) -> Generator:
        """Vial, dispense and weigh each precursor, mill, press, crucible to the rack."""
        rec, c = st.rec, self.config
        rec.status, rec.started_s = "running", float(self.env.now)
        yield from self._use("robot", rec, c.robot_move_s)  # fetch a vial
        for p, m in self.commanded_masses(rec.recipe):
            yield from self._p_dispense(st, p, m)
        yield from self._p_mill(st, rec.recipe.milling_time)
        yield from self._use("press", rec, c.press_s)
        yield from self._use("robot", rec, c.robot_move_s)  # crucible to the furnace rack

    def _p_after_firing(self, st: _Sample, log: FurnaceLog) -> Generator:
        if log.status == "ok":
            yield from self._use("robot", st.rec, self.config.robot_move_s)  # furnace to XRD
            yield from self._p_characterise(st)
            self._finish(st, "done")
        else:
            self._finish(st, "failed")
        self._outstanding -= 1
        if self._outstanding == 0 and self._drained is not None:
            self._drained.succeed()

    def _p_dispense(self, st: _Sample, precursor: str, mass_g: float) -> Generator:
        rec, c = st.rec, self.config
        yield from self._use("balance", rec, c.dispense_s)
        lot = self._lots[precursor]
        if lot.uses >= c.samples_per_lot:
            lot = self._lots[precursor] = self._new_lot(precursor, int(lot.lot_id[-3:]) + 1)
        lot.uses += 1
        humidity = self._humidity()
        if not st.dispensed:
            rec.humidity = humidity
            st.dispensed = True
        water = lot.hygroscopicity * humidity
        z = self.rng.standard_normal(2)
        dispensed = mass_g * (1.0 + c.dispense_rel_sd * float(z[0]))
        weighed = dispensed + c.balance_sd_g * float(z[1])
        rec.weighed_g[precursor] = rec.weighed_g.get(precursor, 0.0) + weighed
        rec.lot[precursor] = lot.lot_id
        t = rec.truth
        t.dispensed_g[precursor] = t.dispensed_g.get(precursor, 0.0) + dispensed
        t.moisture[precursor] = water
        t.purity[precursor] = lot.purity
        target, dry = rec.recipe.target, dispensed * (1.0 - water)
        st.initial[self._solid_index[precursor]] += amount_per_target(
            self.system, target, precursor, dry * lot.purity, c.batch_mass_g)
        imp = self._impurity[precursor]
        if imp is not None:
            st.initial[self._solid_index[imp]] += amount_per_target(
                self.system, target, imp, dry * (1.0 - lot.purity), c.batch_mass_g)
        return weighed

    def _p_mill(self, st: _Sample, hours: float) -> Generator:
        yield from self._use("mill", st.rec, self.config.mill_overhead_s + hours * 3600.0)
        st.milling_time = hours
        st.rec.mill_time_h = hours

    def _p_fire(self, samples: list[_Sample], programme: Programme,
                furnace: int | None) -> Generator:
        self._n_firings += 1
        job = _Job(f"F{self._n_firings:05d}", samples, programme, furnace, self.env.event(),
                   float(self.env.now))
        self._event(f"{job.firing_id} queued")
        self._jobs.put(job)
        self.queue_log.append((job.queued_s, "furnace", len(self._jobs)))
        log = yield job.done
        return log

    def _furnace_worker(self, f: int) -> Generator:
        """Furnace ``f``: take the next job it may fire, fire it; repair after a breakdown."""
        while True:
            job = self._jobs.get(f)
            if not isinstance(job, _Job):  # nothing to fire: wait
                waiting = job
                try:
                    job = yield waiting
                except simpy.Interrupt as intr:  # broke down while idle
                    self._jobs.cancel(waiting)
                    yield from self._repair(f, float(intr.cause))
                    continue
            self.queue_log.append((float(self.env.now), "furnace", len(self._jobs)))
            if self.config.reference_every and self._since_reference[f] >= self.config.reference_every:
                broke = yield from self._firing(f, None)
                if broke is not None:
                    self._jobs.put(job)  # not fired yet: back in the queue
                    yield from self._repair(f, broke)
                    continue
                self._since_reference[f] = 0
            self._since_reference[f] += 1
            broke = yield from self._firing(f, job)
            if broke is not None:
                yield from self._repair(f, broke)

    def _repair(self, f: int, repair_s: float) -> Generator:
        start = float(self.env.now)
        self._event(f"furnace-{f} breakdown")
        yield self.env.timeout(repair_s)
        self._event(f"furnace-{f} repaired")
        self.usage.append(("furnace", f"furnace-{f}", "repair", start, float(self.env.now)))

    def _breaker(self, f: int) -> Generator:
        c = self.config
        while True:
            mtbf = c.mtbf_h * 3600.0
            ttf = float(self.rng.exponential(mtbf)) if c.stochastic else mtbf
            yield self.env.timeout(ttf)
            repair = self._duration(c.repair_h * 3600.0)
            self._workers[f].interrupt(repair)
            yield self.env.timeout(repair)

    def _walk_offset(self, f: int) -> float:
        c = self.config
        days = (self.env.now - self._offset_time[f]) / DAY
        self._offset[f] += c.offset_walk_K_per_sqrt_day * math.sqrt(days) * float(
            self.rng.standard_normal())
        self._offset_time[f] = float(self.env.now)
        return self._offset[f]

    def _firing(self, f: int, job: _Job | None) -> Generator:
        """One firing on furnace ``f`` (``job`` None: a reference run).

        Returns None when it completed, else the repair time (s) of the breakdown that
        ended it.
        """
        c = self.config
        model = self._models[f]
        offset = self._walk_offset(f)
        model.params = model.params.with_offset(offset)
        model.reset()
        if job is None:
            self._n_firings += 1
            firing_id = f"F{self._n_firings:05d}"
            top = min(max(REFERENCE_STANDARDS.values()) + 25.0, model.params.max_temperature_K)
            programme = reference_programme(model.params.ambient_K, top)
            sp, dt = reference_grid(programme, model.params.tau_s)
        else:
            firing_id, programme = job.firing_id, job.programme
            sp, dt = firing_grid(programme, model.params.tau_s)
        true_K, tc_K = model.simulate(sp, dt)
        t_end = np.cumsum(dt)
        start = float(self.env.now)
        kind = "reference" if job is None else "sample"
        ids = tuple(s.rec.sample_id for s in job.samples) if job is not None else ()
        self._event(f"{firing_id} furnace-{f} start")
        for s in job.samples if job is not None else ():
            s.rec.waits_s["furnace"] = start - job.queued_s
            s.rec.furnace, s.rec.firing_id = f, firing_id
            s.rec.instruments["furnace"] = f"furnace-{f}"
            s.rec.programme = programme
        broke: float | None = None
        try:
            yield self.env.timeout(self._duration(c.furnace_load_s) + float(t_end[-1]))
        except simpy.Interrupt as intr:
            broke = float(intr.cause)
        end = float(self.env.now)
        status = "ok" if broke is None else "failed"
        self._event(f"{firing_id} furnace-{f} {'end' if broke is None else 'failed'}")
        self.usage.append(("furnace", f"furnace-{f}", firing_id, start, end))
        if broke is not None:  # the log stops at the breakdown
            keep = t_end <= end - start
            t_end, sp, tc_K, true_K = t_end[keep], sp[keep], tc_K[keep], true_K[keep]
        refs: tuple[ReferenceReading, ...] = ()
        if job is None and broke is None:
            refs = self._reference_readings(firing_id, f, start, model.params.ambient_K,
                                            t_end, true_K, tc_K)
        log = FurnaceLog(firing_id, f, ids, programme, status, start, end, t_end, sp, tc_K,
                         refs, kind)
        self.firings.append(log)
        self.firing_truth.append(dict(firing_id=firing_id, furnace=f, kind=kind, status=status,
                                      offset_K=offset, drift_std_K=model.params.drift_std_K))
        if job is not None:
            summary = log.summary()
            prev = np.concatenate([[model.params.ambient_K], true_K[:-1]])
            kin_T = 0.5 * (prev + true_K)  # mean over each step
            for s in job.samples:
                s.rec.tc_summary = summary
                tr = s.rec.truth
                tr.offset_K, tr.trace_time_s, tr.trace_K = offset, t_end, true_K
                if broke is None:
                    s.fired = True
                    s.kin_T, s.kin_dt = kin_T, dt
                    self._pending_fire.append(s)
            job.done.succeed(log)
        return broke

    def _reference_readings(self, firing_id, f, start, ambient_K, t_end, true_K, tc_K):
        """Thermocouple reading (interpolated) when the true temperature crosses each melt."""
        out = []
        t_prev = np.concatenate([[0.0], t_end[:-1]])
        T_prev = np.concatenate([[ambient_K], true_K[:-1]])
        tc_prev = np.concatenate([[tc_K[0]], tc_K[:-1]])
        for name, Tm in REFERENCE_STANDARDS.items():
            k = int(np.argmax(true_K >= Tm))
            if true_K[k] < Tm or k == 0:
                continue
            u = (Tm - T_prev[k]) / (true_K[k] - T_prev[k])
            reading = tc_prev[k] + u * (tc_K[k] - tc_prev[k])
            t = start + self.config.furnace_load_s / 2 + t_prev[k] + u * (t_end[k] - t_prev[k])
            out.append(ReferenceReading(firing_id, f, name, Tm, float(reading), float(t)))
        return tuple(out)

    def _p_characterise(self, st: _Sample) -> Generator:
        c = self.config
        yield from self._use("xrd", st.rec, c.xrd_s)
        st.xrd_noise = self.rng.standard_normal(len(self._net.solids))
        yield from self._use("property", st.rec, c.property_s)
        st.perf_noise = float(self.rng.standard_normal())
        if st.finalised:
            self._measure(st)

    # ------------------------------------------------------------------ chemistry
    def _finalise(self) -> None:
        """Fire every fired-but-unevaluated sample (batched) and fill in its results."""
        if not self._pending_fire:
            return
        pending, self._pending_fire = self._pending_fire, []
        groups: dict[int, list[_Sample]] = {}
        for s in pending:
            groups.setdefault(s.kin_T.shape[0], []).append(s)
        solids = self._net.solids
        for group in groups.values():
            recipes = [s.rec.recipe if s.rec.recipe.milling_time == s.milling_time
                       else replace(s.rec.recipe, milling_time=s.milling_time) for s in group]
            batch = RecipeBatch.from_recipes(self.system, recipes, validate=False)  # checked when submitted
            trace = TemperatureTrace(_rows([s.kin_T for s in group]), _rows([s.kin_dt for s in group]))
            fired = fire(self.system, batch, trace=trace, initial=_rows([s.initial for s in group]))
            for b, s in enumerate(group):
                s.finalised = True
                tr = s.rec.truth
                tr.initial_mol = dict(zip(solids, s.initial.tolist(), strict=True))
                tr.phase_fractions = dict(zip(solids, fired.phase_fractions[b].tolist(),
                                              strict=True))
                tr.target_fraction = float(fired.target_fraction[b])
                tr.grain_size_um = float(fired.grain_size[b])
                tr.performance = float(fired.performance[b])
                dwell_K = s.kin_T[s.rec.programme.dwell_mask(tr.trace_time_s)]
                tr.dwell_mean_K = float(dwell_K.sum()) / dwell_K.size if dwell_K.size else math.nan
                if s.xrd_noise is not None:
                    self._measure(s)

    def _measure(self, st: _Sample) -> None:
        """Measured XRD fractions and property from the truth and the drawn noise."""
        model = self.config.measurement
        true = np.array([st.rec.truth.phase_fractions.get(p, 0.0) for p in self._net.solids])
        meas = model.xrd(true, st.xrd_noise)
        st.rec.xrd_phase_fractions = dict(zip(self._net.solids, meas.tolist(), strict=True))
        st.rec.performance = model.property(st.rec.truth.performance, st.perf_noise)


def _rows(arrays: list[np.ndarray]) -> np.ndarray:
    """Stack 1-D arrays as rows (one array: a view, no copy)."""
    return arrays[0][None, :] if len(arrays) == 1 else np.stack(arrays)


def random_lab_recipes(system: ChemicalSystem, n: int, rng: np.random.Generator,
                       max_temperature_K: float) -> list[Recipe]:
    """``n`` random valid recipes whose dwell the furnaces can reach (rejection sampling)."""
    from synthgap.envs.chemistry import random_recipes

    out: list[Recipe] = []
    while len(out) < n:
        batch = random_recipes(system, max(2 * (n - len(out)), 8), rng)
        ok = np.flatnonzero(batch.dwell_temperature <= max_temperature_K)
        out.extend(batch.recipe(system, int(i)) for i in ok[: n - len(out)])
    return out

