"""A furnace of the twin (:class:`SimFurnace`); the grids its firings are simulated on are :mod:`.firing_grid`'s.

Each furnace owns a :class:`~synthgap.envs.lab.thermal.FurnaceThermalModel` (overshoot, OU
drift, thermocouple noise) and its calibration offset, which starts at a given value and
wanders as a random walk (K per sqrt(day)). The kinetics see the TRUE sample
temperature; agents see the setpoint programme and the logged thermocouple trace.

Furnaces are worker processes pulling firing jobs (loads of one or more crucibles sharing
one programme) from one shared :class:`~synthgap.envs.lab.firing_queue.FiringQueue`, so a
job goes to the first furnace that frees up (or to the furnace it is pinned to).

Breakdowns (SimPy ``machine_shop`` style): each furnace fails after an exponential time
(calendar time, mean ``mtbf_h``) and is repaired for ``repair_h``; the failure is a SimPy
interrupt of the furnace's worker. **A load being fired when its furnace breaks is
lost**: its samples finish with status ``"failed"`` (a half-fired pellet cannot be
re-fired as new); the agent may resubmit. A furnace that breaks while idle is repaired
before it takes a job.

Reference runs: every ``reference_every`` sample firings (and before its first one) a
furnace runs a slow ramp through the melting points of Al, Ag and Au; the thermocouple
reading at each melt is logged (:class:`~synthgap.envs.lab.records.ReferenceReading`).
:mod:`synthgap.envs.lab.calibration` fits offsets from these readings.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import simpy

from .firing_grid import REFERENCE_STANDARDS, firing_grid, reference_grid, reference_programme
from .firing_queue import FiringQueue
from .floor import LabFloor
from .furnace_live import live_firing
from .params import DAY
from .records import FurnaceLog, Programme, ReferenceReading
from .thermal import FurnaceThermalModel

__all__ = ["REFERENCE_STANDARDS", "FiringJob", "SimFurnace", "firing_grid", "may_fire",
           "reference_grid", "reference_programme"]

@dataclass(eq=False)
class FiringJob:
    """A load waiting for a furnace: its crucibles' samples, programme, the furnace it is
    pinned to (None: any), the event that fires with its :class:`FurnaceLog`, and the lab
    time it was queued, s."""

    firing_id: str
    samples: list[Any]
    programme: Programme
    furnace: int | None
    done: simpy.Event
    queued_s: float
    live: Any = None  # a furnace_live.LiveFiring: the load is driven interval by interval


def may_fire(job: FiringJob, furnace: int) -> bool:
    """A job pinned to a furnace waits for that one; any other goes to any furnace."""
    return job.furnace is None or job.furnace == furnace


class SimFurnace:
    """One furnace: its thermal model, its wandering offset, its breakdowns and its firings.

    Args:
        floor: the twin's shared clock, generator, parameters and logs.
        index: the furnace's number (its instrument id is ``furnace-{index}``).
        offset_K: initial TRUE calibration offset, K (thermocouple reads this much high).
        jobs: the queue of firing jobs all furnaces serve.

    Attributes:
        model: the furnace's thermal model (its ``params.offset_K`` is set at each firing).
        offset_K: current TRUE offset, K, as of ``offset_time_s`` (lab time, s).
        since_reference: sample firings since the last reference run.
        worker: the SimPy process that fires jobs (interrupted by a breakdown).
    """

    def __init__(self, floor: LabFloor, index: int, offset_K: float,
                 jobs: FiringQueue[FiringJob]) -> None:
        c = floor.config
        self.floor, self.index, self.name = floor, index, f"furnace-{index}"
        self.offset_K = offset_K
        self.offset_time_s = 0.0
        self.model = FurnaceThermalModel(replace(c.furnace, offset_K=offset_K), floor.rng)
        self.since_reference = c.reference_every
        self.jobs = jobs
        self.worker: simpy.Process | None = None

    @property
    def max_temperature_K(self) -> float:
        """The highest setpoint this furnace accepts, K."""
        return self.model.params.max_temperature_K

    def start(self) -> None:
        """Start the worker process."""
        self.worker = self.floor.env.process(self._work())

    def start_breakdowns(self) -> None:
        """Start the process that breaks the furnace down (every ``mtbf_h`` on average)."""
        self.floor.env.process(self._break())

    def _work(self) -> Generator:
        """Take the next job this furnace may fire, fire it; repair after a breakdown."""
        floor, c, jobs = self.floor, self.floor.config, self.jobs
        while True:
            job = jobs.get(self.index)
            if not isinstance(job, FiringJob):  # nothing to fire: wait
                waiting = job
                try:
                    job = yield waiting
                except simpy.Interrupt as intr:  # broke down while idle
                    jobs.cancel(waiting)
                    yield from self._repair(float(intr.cause))
                    continue
            floor.queue_log.append((float(floor.env.now), "furnace", len(jobs)))
            if c.reference_every and self.since_reference >= c.reference_every:
                broke = yield from self._firing(None)
                if broke is not None:
                    jobs.put(job)  # not fired yet: back in the queue
                    yield from self._repair(broke)
                    continue
                self.since_reference = 0
            self.since_reference += 1
            broke = yield from (live_firing(self, job) if job.live is not None else self._firing(job))
            if broke is not None:
                yield from self._repair(broke)

    def _repair(self, repair_s: float) -> Generator:
        floor = self.floor
        start = float(floor.env.now)
        floor.event(f"{self.name} breakdown")
        yield floor.env.timeout(repair_s)
        floor.event(f"{self.name} repaired")
        floor.usage.append(("furnace", self.name, "repair", start, float(floor.env.now)))

    def _break(self) -> Generator:
        floor, c = self.floor, self.floor.config
        while True:
            mtbf = c.mtbf_h * 3600.0
            ttf = float(floor.rng.exponential(mtbf)) if c.stochastic else mtbf
            yield floor.env.timeout(ttf)
            repair = floor.duration(c.repair_h * 3600.0)
            self.worker.interrupt(repair)
            yield floor.env.timeout(repair)

    def walk_offset(self) -> float:
        """Random-walk the offset up to now; return it, K."""
        floor = self.floor
        days = (floor.env.now - self.offset_time_s) / DAY
        self.offset_K += floor.config.offset_walk_K_per_sqrt_day * math.sqrt(days) * float(
            floor.rng.standard_normal())
        self.offset_time_s = float(floor.env.now)
        return self.offset_K

    def _firing(self, job: FiringJob | None) -> Generator:
        """One firing (``job`` None: a reference run).

        Returns None when it completed, else the repair time (s) of the breakdown that
        ended it.
        """
        floor, f = self.floor, self.index
        model = self.model
        offset = self.walk_offset()
        model.params = model.params.with_offset(offset)
        model.reset()
        if job is None:
            firing_id = floor.next_firing_id()
            top = min(max(REFERENCE_STANDARDS.values()) + 25.0, model.params.max_temperature_K)
            programme = reference_programme(model.params.ambient_K, top)
            sp, dt = reference_grid(programme, model.params.tau_s)
        else:
            firing_id, programme = job.firing_id, job.programme
            sp, dt = firing_grid(programme, model.params.tau_s)
        true_K, tc_K = model.simulate(sp, dt)
        t_end = np.cumsum(dt)
        start = float(floor.env.now)
        kind = "reference" if job is None else "sample"
        ids = tuple(s.rec.sample_id for s in job.samples) if job is not None else ()
        floor.event(f"{firing_id} {self.name} start")
        for s in job.samples if job is not None else ():  # provenance; the front-end writes the rest
            s.rec.waits_s["furnace"] = start - job.queued_s
            s.rec.instruments["furnace"] = self.name
        broke: float | None = None
        try:
            yield floor.env.timeout(floor.duration(floor.config.furnace_load_s) + float(t_end[-1]))
        except simpy.Interrupt as intr:
            broke = float(intr.cause)
        end = float(floor.env.now)
        status = "ok" if broke is None else "failed"
        floor.event(f"{firing_id} {self.name} {'end' if broke is None else 'failed'}")
        floor.usage.append(("furnace", self.name, firing_id, start, end))
        if broke is not None:  # the log stops at the breakdown
            keep = t_end <= end - start
            t_end, sp, tc_K, true_K = t_end[keep], sp[keep], tc_K[keep], true_K[keep]
        refs: tuple[ReferenceReading, ...] = ()
        if job is None and broke is None:
            refs = self._reference_readings(firing_id, start, model.params.ambient_K, t_end, true_K, tc_K)
        log = FurnaceLog(firing_id, f, ids, programme, status, start, end, t_end, sp, tc_K,
                         refs, kind)
        floor.firings.append(log)
        floor.firing_truth.append(dict(firing_id=firing_id, furnace=f, kind=kind, status=status,
                                       offset_K=offset, drift_std_K=model.params.drift_std_K))
        if job is not None:
            prev = np.concatenate([[model.params.ambient_K], true_K[:-1]])
            kin_T = 0.5 * (prev + true_K)  # mean over each step
            for s in job.samples:
                tr = s.truth
                tr.offset_K, tr.trace_time_s, tr.trace_K = offset, t_end, true_K
                if broke is None:
                    s.fired = True
                    s.kin_T, s.kin_dt = kin_T, dt
                    floor.fired.append(s)
            job.done.succeed(log)
        return broke

    def _reference_readings(self, firing_id: str, start: float, ambient_K: float, t_end: np.ndarray,
                            true_K: np.ndarray, tc_K: np.ndarray) -> tuple[ReferenceReading, ...]:
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
            t = start + self.floor.config.furnace_load_s / 2 + t_prev[k] + u * (t_end[k] - t_prev[k])
            out.append(ReferenceReading(firing_id, self.index, name, Tm, float(reading), float(t)))
        return tuple(out)
