"""The SimPy twin as a :class:`~synthgap.envs.lab.backend.LabBackend`.

The twin wires its parts together and executes the front-end's steps as SimPy processes,
so every submitted sample advances on one lab clock and waits in the stations' queues:

- :mod:`.params`: :class:`~synthgap.envs.lab.params.LabParams`, every parameter of the twin;
- :mod:`.floor`: the clock, the one random generator, the stations (robot arm, balance,
  ball mills, press, XRD, property station: FIFO queues, gamma-distributed durations)
  and the logs;
- :mod:`.materials`: precursor lots (purity, moisture), the lab's humidity, lot impurities;
- :mod:`.furnace`: :class:`~synthgap.envs.lab.furnace.SimFurnace`, a furnace with its
  thermal model, offset walk, breakdowns and reference runs, serving one shared queue;
- :mod:`.samples`: a sample's state and truth, the batched chemistry and the measurement.

The twin's robot arm is busy for three of the chain's moves (vial to the balance, crucible
to the furnace rack, furnace to the XRD: :data:`ROBOT_MOVES`); the other moves are the
stations' own handling, inside their durations (an assumption of the queue model).

Randomness: ONE ``numpy.random.Generator`` (``np.random.default_rng(seed)``) for
everything; the same seed gives the same campaign record for record.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import simpy

from synthgap.envs.chemistry import ChemicalSystem, network_for
from synthgap.envs.chemistry.incremental import IncrementalFiring
from synthgap.envs.chemistry.recipe import ROOM_TEMPERATURE

from .backend import BackendKind, Dose, Step
from .firing_queue import FiringQueue
from .floor import LabFloor
from .furnace import FiringJob, SimFurnace, may_fire
from .furnace_live import LiveFiring
from .materials import PrecursorStock
from .params import STATIONS, LabParams
from .protocol import LabInputError
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
from .samples import SampleState, evaluate, measure
from .session_furnace import Session
from .session_furnace import session as session_of
from .validation import LabCaps

__all__ = ["TwinBackend", "ROBOT_MOVES"]

#: (from, to) moves that hold the robot arm for ``robot_move_s``.
ROBOT_MOVES = frozenset({("rack", "balance"), ("press", "furnace"), ("furnace", "xrd")})


class TwinBackend:
    """The SimPy twin of a self-driving lab (see the module docstring).

    Args:
        system: the chemical system.
        n_furnaces: number of furnaces (>= 1).
        seed: seed of the one random generator.
        config: all other parameters (:class:`LabParams`).
        truth_system: the chemistry the lab really has (a drawn world, :func:`~.world.draw_world`);
            default ``system`` itself. ``system`` stays the lab's belief.

    Attributes:
        env: the SimPy environment (lab time s).
        rng: the one random generator.
        firings: every :class:`FurnaceLog` (sample and reference runs), in finishing order.
        firing_truth: the simulator truth of every firing (true offset K, drift sd K).
        usage: ``(station, instrument id, job, start s, end s)`` for every instrument use.
        queue_log: ``(time s, station, queue length)`` at every queue change.
        log: ``(event, lab time s)`` tuples when ``config.log_events``.
        truth: sample id -> :class:`SampleTruth` (PRIVILEGED).
    """

    kind: BackendKind = "twin"
    finished_status: SampleStatus = "done"
    ambient_K = ROOM_TEMPERATURE

    def __init__(self, system: ChemicalSystem, n_furnaces: int = 4, seed: int = 0,
                 config: LabParams | None = None, truth_system: ChemicalSystem | None = None) -> None:
        if not isinstance(n_furnaces, int | np.integer) or isinstance(n_furnaces, bool) or n_furnaces < 1:
            raise LabInputError(f"n_furnaces must be an integer >= 1, got {n_furnaces!r}")
        config = config if config is not None else LabParams()
        if config.furnace_offsets_K is not None and len(config.furnace_offsets_K) != n_furnaces:
            raise LabInputError(f"furnace_offsets_K has {len(config.furnace_offsets_K)} values "
                                f"for {n_furnaces} furnaces")
        self.system = system
        #: the chemistry this lab really has (a drawn world, :mod:`.world`): PRIVILEGED
        self.truth_system = truth_system if truth_system is not None else system
        self.config = config
        self.batch_mass_g = config.batch_mass_g
        self.n_furnaces = int(n_furnaces)
        self.rng = np.random.default_rng(seed)
        floor = self.floor = LabFloor(config, self.rng)
        self.env = floor.env
        self.log, self.firings, self.firing_truth = floor.log, floor.firings, floor.firing_truth
        self.usage, self.queue_log = floor.usage, floor.queue_log
        self.truth: dict[str, SampleTruth] = {}
        self._net = network_for(self.truth_system)
        self._samples: dict[str, SampleState] = {}
        self._outstanding = 0
        self._live: dict[int, LiveFiring] = {}  # id(session) -> its channel to the furnace
        self._drained: simpy.Event | None = None
        self._stock = PrecursorStock(system, self._net, config, self.rng)

        # Furnaces: offsets drawn (or given), then random-walked by each furnace.
        if config.furnace_offsets_K is not None:
            offsets = [float(o) for o in config.furnace_offsets_K]
        else:
            offsets = (config.offset_sd_K * self.rng.standard_normal(self.n_furnaces)).tolist()
        self._jobs: FiringQueue[FiringJob] = FiringQueue(self.env, may_fire)
        self.furnaces = [SimFurnace(floor, f, o, self._jobs) for f, o in enumerate(offsets)]
        #: what this lab refuses beyond the recipe and programme limits: its furnaces' maximum.
        self.caps = LabCaps(max_temperature_K=min(f.max_temperature_K for f in self.furnaces))
        for furnace in self.furnaces:
            furnace.start()
        if math.isfinite(config.mtbf_h):
            for furnace in self.furnaces:  # after every worker: the same order of events
                furnace.start_breakdowns()

    # ------------------------------------------------------------------ clock and scheduling
    @property
    def now(self) -> float:
        """Lab clock, s."""
        return float(self.env.now)

    def start(self, process: Generator[Any, Any, Any], sample_ids: Sequence[str]) -> simpy.Process:
        """Start a chain as a SimPy process; the handle is the process (an event)."""
        self._outstanding += 1
        if self._drained is None or self._drained.triggered:
            self._drained = self.env.event()
        return self.env.process(self._tracked(process))

    def _tracked(self, process: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
        try:
            return (yield from process)
        finally:
            self._outstanding -= 1
            if self._outstanding == 0 and self._drained is not None and not self._drained.triggered:
                self._drained.succeed()

    def advance(self, until: float | None = None, handle: object | None = None) -> None:
        """Run the event queue until ``handle``'s process (None: every chain) finished, or lab time ``until`` s."""
        env = self.env
        target = handle if handle is not None else (self._drained if self._outstanding else None)
        if until is None:
            if target is not None:
                env.run(until=target)
        elif target is None:
            if until > env.now:
                env.run(until=until)
        else:
            env.run(until=env.any_of([target, env.timeout(until - env.now)]))

    def execute(self, step: Step[Any], sample_id: str) -> Any:
        """Run one step as a process, to its end."""
        proc = self.env.process(step)
        self.env.run(until=proc)
        return proc.value

    def parallel(self, steps: Iterable[Step[Any]]) -> Step[list[Any]]:
        """Run ``steps`` as concurrent processes; their results in order."""
        procs = [self.env.process(s) for s in steps]
        yield self.env.all_of(procs)
        return [p.value for p in procs]

    # ------------------------------------------------------------------ samples
    def open_sample(self, rec: SampleRecord) -> None:
        st = SampleState(rec, np.zeros(len(self._net.solids)), rec.recipe.milling_time)
        self._samples[rec.sample_id] = st
        self.truth[rec.sample_id] = st.truth

    def close_sample(self, rec: SampleRecord) -> None:
        self.floor.event(f"{rec.sample_id} {rec.status}")

    # ------------------------------------------------------------------ instruments
    def transfer(self, rec: SampleRecord, src: str, dst: str) -> Step[None]:
        if (src, dst) in ROBOT_MOVES:
            yield from self.floor.use("robot", rec, self.config.robot_move_s)

    def dispense(self, rec: SampleRecord, precursor: str, mass_g: float) -> Step[Dose]:
        st, c = self._samples[rec.sample_id], self.config
        yield from self.floor.use("balance", rec, c.dispense_s)
        lot = self._stock.take(precursor)
        humidity = self._stock.humidity(self.env.now)
        water = lot.hygroscopicity * humidity
        z = self.rng.standard_normal(2)
        dispensed = mass_g * (1.0 + c.dispense_rel_sd * float(z[0]))
        weighed = dispensed + c.balance_sd_g * float(z[1])
        t = st.truth
        t.dispensed_g[precursor] = t.dispensed_g.get(precursor, 0.0) + dispensed
        t.moisture[precursor] = water
        t.purity[precursor] = lot.purity
        self._stock.add_dose(st.initial, rec.recipe.target, precursor, dispensed * (1.0 - water), lot.purity)
        return Dose(weighed, lot.lot_id, humidity)

    def mill(self, rec: SampleRecord, hours: float) -> Step[None]:
        yield from self.floor.use("mill", rec, self.config.mill_overhead_s + hours * 3600.0)
        self._samples[rec.sample_id].milling_time = hours

    def press(self, rec: SampleRecord) -> Step[None]:
        yield from self.floor.use("press", rec, self.config.press_s)

    def fire(self, recs: Sequence[SampleRecord], programme: Programme, furnace: int | None) -> Step[FurnaceLog]:
        samples = [self._samples[r.sample_id] for r in recs]
        job = FiringJob(self.floor.next_firing_id(), samples, programme, furnace, self.env.event(),
                        float(self.env.now))
        self.floor.event(f"{job.firing_id} queued")
        self._jobs.put(job)
        self.queue_log.append((job.queued_s, "furnace", len(self._jobs)))
        log = yield job.done
        return log

    def characterise(self, rec: SampleRecord) -> Step[Characterisation | None]:
        st, c = self._samples[rec.sample_id], self.config
        yield from self.floor.use("xrd", rec, c.xrd_s)
        st.xrd_noise = self.rng.standard_normal(len(self._net.solids))
        yield from self.floor.use("property", rec, c.property_s)
        st.perf_noise = float(self.rng.standard_normal())
        return measure(st, self._net.solids, c.measurement) if st.finalised else None

    # ------------------------------------------------------------------ a furnace session
    def open_firing(self, recs: Sequence[SampleRecord], atmosphere: str, furnace: int | None) -> Step[Session]:
        """Queue the load for a furnace; returns the session once a furnace has taken it."""
        samples = [self._samples[r.sample_id] for r in recs]
        recipes = [replace(r.recipe, milling_time=s.milling_time) for r, s in zip(recs, samples, strict=True)]
        initial = np.stack([s.initial for s in samples])
        recs = list(recs)

        def make_session(firing_id: str, index: int, model: Any, offset: float, start: float) -> Session:
            chem = IncrementalFiring(self.truth_system, recipes, initial, atmosphere)
            return Session(firing_id, recs, atmosphere, model, chem, offset, start, index)

        live = LiveFiring(simpy.Store(self.env), self.env.event(), make_session)
        job = FiringJob(self.floor.next_firing_id(), samples, Programme((), atmosphere), furnace,
                        self.env.event(), float(self.env.now), live)
        self.floor.event(f"{job.firing_id} queued (live)")
        self._jobs.put(job)
        self.queue_log.append((job.queued_s, "furnace", len(self._jobs)))
        session = yield live.opened
        self._live[id(session)] = live
        return session

    def continue_firing(self, handle: object, segments: tuple[Segment, ...]) -> Step[FurnaceReadings]:
        live = self._live[id(session_of(handle))]
        reply = self.env.event()
        yield live.requests.put((segments, reply))
        readings = yield reply
        return readings

    def close_firing(self, handle: object) -> Step[FurnaceLog]:
        live = self._live.pop(id(session_of(handle)))
        reply = self.env.event()
        yield live.requests.put((None, reply))
        log = yield reply
        return log

    def settle(self) -> list[tuple[str, Characterisation]]:
        """Evaluate the chemistry of every fired-but-unevaluated sample (batched); hand out
        the measurements of those already scanned."""
        fired = self.floor.fired
        if not fired:
            return []
        pending = fired[:]
        fired.clear()
        return evaluate(self.truth_system, self._net.solids, pending, self.config.measurement)

    def close(self) -> None:
        """Nothing to free (the twin holds no ports or threads)."""

    # ------------------------------------------------------------------ twin-only views
    def furnace_offsets(self) -> list[float]:
        """The furnaces' current TRUE offsets, K (simulator truth, for tests and plots)."""
        return [f.offset_K for f in self.furnaces]

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
