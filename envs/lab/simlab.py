"""SimLab: a SimPy discrete-event twin of a self-driving solid-state synthesis lab.

The twin wires its parts together and runs the sample chain (vial, dispense and weigh,
mill, press, fire a load, XRD, property) as SimPy processes:

- :mod:`.params`: :class:`LabParams`, every parameter of the twin;
- :mod:`.floor`: the clock, the one random generator, the stations (robot arm, balance,
  ball mills, press, XRD, property station: FIFO queues, gamma-distributed durations)
  and the logs;
- :mod:`.materials`: precursor lots (purity, moisture), the lab's humidity, lot impurities;
- :mod:`.furnace`: :class:`~synthgap.envs.lab.furnace.SimFurnace`, a furnace with its
  thermal model, offset walk, breakdowns and reference runs, serving one shared queue;
- :mod:`.samples`: a sample's state, the batched chemistry and the measurement;
- :mod:`.validation`: what the lab refuses, before anything is simulated.

Randomness: ONE ``numpy.random.Generator`` (``np.random.default_rng(seed)``) for
everything; the same seed gives the same campaign record for record.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from typing import Any

import numpy as np
import simpy

from synthgap.envs.chemistry import ChemicalSystem, Recipe, load_system, network_for
from synthgap.envs.chemistry.stoichiometry import precursor_masses

from .firing_queue import FiringQueue
from .floor import LabFloor
from .furnace import (
    REFERENCE_STANDARDS,
    FiringJob,
    SimFurnace,
    firing_grid,
    may_fire,
    reference_grid,
    reference_programme,
)
from .materials import PrecursorStock
from .params import STATIONS, LabParams
from .protocol import LabInputError
from .records import Characterisation, FurnaceLog, Programme, SampleRecord, SampleStatus, write_records
from .samples import SampleState, evaluate, measure
from .validation import (
    LabCaps,
    check_dose,
    check_load,
    check_load_ids,
    check_milling,
    check_programme,
    check_recipe,
    check_until,
    not_fired,
)

__all__ = ["LabParams", "SimLab", "STATIONS", "REFERENCE_STANDARDS", "firing_grid",
           "reference_grid", "reference_programme", "random_lab_recipes"]


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
        firing_truth: the simulator truth of every firing (true offset K, drift sd K).
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
        floor = self._floor = LabFloor(config, self.rng)
        self.env = floor.env
        self.log, self.firings, self.firing_truth = floor.log, floor.firings, floor.firing_truth
        self.usage, self.queue_log = floor.usage, floor.queue_log
        self.records: dict[str, SampleRecord] = {}

        self._net = network_for(system)
        self._samples: dict[str, SampleState] = {}
        self._unreported: list[SampleRecord] = []
        self._outstanding = 0
        self._drained: simpy.Event | None = None
        self._n_samples = 0
        self._stock = PrecursorStock(system, self._net, config, self.rng)

        # Furnaces: offsets drawn (or given), then random-walked by each furnace.
        if config.furnace_offsets_K is not None:
            offsets = [float(o) for o in config.furnace_offsets_K]
        else:
            offsets = (config.offset_sd_K * self.rng.standard_normal(self.n_furnaces)).tolist()
        self._jobs: FiringQueue[FiringJob] = FiringQueue(self.env, may_fire)
        self._furnaces = [SimFurnace(floor, f, o, self._jobs) for f, o in enumerate(offsets)]
        self.max_temperature_K = min(f.max_temperature_K for f in self._furnaces)
        #: what this lab refuses beyond the recipe and programme limits: its furnaces' maximum.
        self.caps = LabCaps(max_temperature_K=self.max_temperature_K)
        for furnace in self._furnaces:
            furnace.start()
        if math.isfinite(config.mtbf_h):
            for furnace in self._furnaces:  # after every worker: the same order of events
                furnace.start_breakdowns()

    # ------------------------------------------------------------------ public API
    @property
    def now(self) -> float:
        """Lab clock, s."""
        return float(self.env.now)

    def furnace_offsets(self) -> list[float]:
        """The furnaces' current TRUE offsets, K (simulator truth, for tests and plots)."""
        return [f.offset_K for f in self._furnaces]

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
        programme = check_load(recipes, tags, self._check_recipe)
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
        if check_until(until, self.now) is not None:
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
        self._run_proc(self._floor.use("press", self._sample(sample_id).rec, self.config.press_s))

    def fire(self, sample_ids: Sequence[str], programme: Programme,
             furnace: int | None = None) -> FurnaceLog:
        """Fire a load of crucibles with one programme (optionally on a given furnace)."""
        samples = [self._sample(s) for s in sample_ids]
        check_load_ids(sample_ids)
        self._check_programme(programme, furnace)
        return self._run_proc(self._p_fire(samples, programme, furnace))

    def characterise(self, sample_id: str) -> Characterisation:
        """XRD and property measurement of a fired sample."""
        st = self._sample(sample_id)
        if not st.fired:
            raise not_fired(sample_id)
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

    def _sample(self, sample_id: str) -> SampleState:
        try:
            return self._samples[sample_id]
        except KeyError:
            raise LabInputError(f"unknown sample id {sample_id!r}") from None

    # ------------------------------------------------------------------ helpers
    def _run_proc(self, gen: Generator) -> Any:
        proc = self.env.process(gen)
        self.env.run(until=proc)
        return proc.value

    def _new_sample(self, recipe: Recipe, tag: str) -> SampleState:
        self._n_samples += 1
        sid = f"S{self._n_samples:05d}"
        rec = SampleRecord(sid, tag, recipe)
        st = SampleState(rec, np.zeros(len(self._net.solids)), recipe.milling_time)
        self._samples[sid] = st
        self.records[sid] = rec
        return st

    def commanded_masses(self, recipe: Recipe) -> list[tuple[str, float]]:
        """(precursor, g) to weigh for ``config.batch_mass_g`` g of target, excess included."""
        return precursor_masses(self.system, recipe.target, recipe.precursors, self.config.batch_mass_g,
                                recipe.excess)

    def _finish(self, st: SampleState, status: SampleStatus) -> None:
        st.rec.status = status
        st.rec.finished_s = float(self.env.now)
        self._unreported.append(st.rec)
        self._floor.event(f"{st.rec.sample_id} {status}")

    def _finalise(self) -> None:
        """Fire every fired-but-unevaluated sample (batched) and fill in its results."""
        fired = self._floor.fired
        if fired:
            pending = fired[:]
            fired.clear()
            evaluate(self.system, self._net.solids, pending, self.config.measurement)

    # ------------------------------------------------------------------ processes
    def _p_chain(self, st: SampleState) -> Generator:
        yield from self._p_prepare(st)
        log = yield from self._p_fire([st], Programme.from_recipe(st.rec.recipe), None)
        yield from self._p_after_firing(st, log)

    def _p_load_chain(self, members: list[SampleState], programme: Programme) -> Generator:
        """Prepare every crucible of a shared load, fire them together, measure each."""
        yield self.env.all_of([self.env.process(self._p_prepare(st)) for st in members])
        log = yield from self._p_fire(members, programme, None)
        yield self.env.all_of([self.env.process(self._p_after_firing(st, log)) for st in members])

    def _p_prepare(self, st: SampleState) -> Generator:
        """Vial, dispense and weigh each precursor, mill, press, crucible to the rack."""
        rec, c, use = st.rec, self.config, self._floor.use
        rec.status, rec.started_s = "running", float(self.env.now)
        yield from use("robot", rec, c.robot_move_s)  # fetch a vial
        for p, m in self.commanded_masses(rec.recipe):
            yield from self._p_dispense(st, p, m)
        yield from self._p_mill(st, rec.recipe.milling_time)
        yield from use("press", rec, c.press_s)
        yield from use("robot", rec, c.robot_move_s)  # crucible to the furnace rack

    def _p_after_firing(self, st: SampleState, log: FurnaceLog) -> Generator:
        if log.status == "ok":
            yield from self._floor.use("robot", st.rec, self.config.robot_move_s)  # furnace to XRD
            yield from self._p_characterise(st)
            self._finish(st, "done")
        else:
            self._finish(st, "failed")
        self._outstanding -= 1
        if self._outstanding == 0 and self._drained is not None:
            self._drained.succeed()

    def _p_dispense(self, st: SampleState, precursor: str, mass_g: float) -> Generator:
        rec, c = st.rec, self.config
        yield from self._floor.use("balance", rec, c.dispense_s)
        lot = self._stock.take(precursor)
        humidity = self._stock.humidity(self.env.now)
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
        self._stock.add_dose(st.initial, rec.recipe.target, precursor, dispensed * (1.0 - water), lot.purity)
        return weighed

    def _p_mill(self, st: SampleState, hours: float) -> Generator:
        yield from self._floor.use("mill", st.rec, self.config.mill_overhead_s + hours * 3600.0)
        st.milling_time = hours
        st.rec.mill_time_h = hours

    def _p_fire(self, samples: list[SampleState], programme: Programme,
                furnace: int | None) -> Generator:
        job = FiringJob(self._floor.next_firing_id(), samples, programme, furnace, self.env.event(),
                        float(self.env.now))
        self._floor.event(f"{job.firing_id} queued")
        self._jobs.put(job)
        self.queue_log.append((job.queued_s, "furnace", len(self._jobs)))
        log = yield job.done
        return log

    def _p_characterise(self, st: SampleState) -> Generator:
        c = self.config
        yield from self._floor.use("xrd", st.rec, c.xrd_s)
        st.xrd_noise = self.rng.standard_normal(len(self._net.solids))
        yield from self._floor.use("property", st.rec, c.property_s)
        st.perf_noise = float(self.rng.standard_normal())
        if st.finalised:
            measure(st, self._net.solids, self.config.measurement)


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
