"""A live firing in a twin furnace: the furnace serves a session's segments as they come.

A session's job (:class:`~synthgap.envs.lab.furnace.FiringJob` with ``live`` set) waits in
the furnaces' queue like any load. The furnace that takes it opens a
:class:`~synthgap.envs.lab.session_furnace.Session` on its own thermal model (offset walked
to now, state reset to ambient) and then serves requests from the session's store: segments
to run (simulated on the control grid, the clock advanced by their duration, the chemistry
continued) or the close. A breakdown during a session ends it: the pending and later
requests get ``status="failed"`` readings and the load is lost, as in any firing.

Units: K, s.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from .records import FurnaceReadings, Segment
from .session_furnace import Session, control_grid, kinetic_chunks

__all__ = ["LiveFiring", "live_firing"]


@dataclass(eq=False)
class LiveFiring:
    """The channel between a session and the furnace serving it.

    Attributes:
        requests: a SimPy store of ``(segments or None for the close, reply event)``.
        opened: succeeds with the :class:`Session` once a furnace has taken the load.
        make_session: ``(firing_id, furnace index, thermal model, offset K, start s) -> Session``
            (the backend builds the load's chemistry).
        kin_T, kin_dt: the kinetic steps run so far (K, s), what the chemistry saw.
    """

    requests: simpy.Store
    opened: simpy.Event
    make_session: Callable[..., Session]
    kin_T: list[np.ndarray] = field(default_factory=list)
    kin_dt: list[np.ndarray] = field(default_factory=list)


def _failed_readings(session: Session) -> FurnaceReadings:
    empty = np.zeros(0)
    return FurnaceReadings(empty, empty, empty, session.load_mass_loss(), "failed")


def live_firing(furnace: Any, job: Any) -> Generator[Any, Any, float | None]:
    """Serve one session (``job``, a :class:`~synthgap.envs.lab.furnace.FiringJob` with ``live``
    set) on ``furnace`` (a :class:`~synthgap.envs.lab.furnace.SimFurnace`); return None, or the
    repair time (s) of the breakdown that ended it."""
    floor, model, live = furnace.floor, furnace.model, job.live
    env = floor.env
    offset = furnace.walk_offset()
    model.params = model.params.with_offset(offset)
    model.reset()
    start = float(env.now)
    floor.event(f"{job.firing_id} {furnace.name} start (live)")
    for s in job.samples:  # provenance; the front-end writes the rest
        s.rec.waits_s["furnace"] = start - job.queued_s
        s.rec.instruments["furnace"] = furnace.name
        s.truth.offset_K = offset
    session = live.make_session(job.firing_id, furnace.index, model, offset, start)
    live.opened.succeed(session)
    broke: float | None = None
    while True:
        get = live.requests.get()
        try:
            segments, reply = yield get
        except simpy.Interrupt as intr:  # broke down between two intervals
            get.cancel()
            broke = float(intr.cause) if broke is None else broke
            session.status = "failed"
            continue
        if segments is None:
            break
        if broke is not None:
            reply.succeed(_failed_readings(session))
            continue
        broke = yield from _run(env, session, live, segments, reply)
    end = float(env.now)
    log = session.furnace_log(end)
    floor.event(f"{job.firing_id} {furnace.name} {'end' if broke is None else 'failed'}")
    floor.usage.append(("furnace", furnace.name, job.firing_id, start, end))
    floor.firings.append(log)
    floor.firing_truth.append(dict(firing_id=job.firing_id, furnace=furnace.index, kind="sample", status=log.status,
                                   offset_K=offset, drift_std_K=model.params.drift_std_K))
    for s in job.samples:
        s.truth.trace_time_s, s.truth.trace_K = session.time, session.true_K
        if broke is None and live.kin_T:
            s.fired = True
            s.kin_T, s.kin_dt = np.concatenate(live.kin_T), np.concatenate(live.kin_dt)
            floor.fired.append(s)
    reply.succeed(log)
    return broke


def _run(env: simpy.Environment, session: Session, live: LiveFiring, segments: tuple[Segment, ...],
         reply: simpy.Event) -> Generator[Any, Any, float | None]:
    """One interval: simulate, wait it out, continue the chemistry, reply with the readings."""
    set_K, dt = control_grid(segments)
    true_K, tc_K = session.model.simulate(set_K, dt)
    began = float(env.now)
    broke: float | None = None
    try:
        yield env.timeout(float(dt.sum()))
    except simpy.Interrupt as intr:  # the log stops at the breakdown
        broke = float(intr.cause)
        keep = np.cumsum(dt) <= float(env.now) - began
        set_K, dt, true_K, tc_K = set_K[keep], dt[keep], true_K[keep], tc_K[keep]
        session.status = "failed"
    t_end = session.t_end + np.cumsum(dt)
    if dt.size:
        T, step = kinetic_chunks(true_K, dt)
        session.chem.react(T, step)
        live.kin_T.append(T)
        live.kin_dt.append(step)
    session.log_steps(t_end, set_K, tc_K, true_K, dt, segments)
    status = "ok" if broke is None else "failed"
    reply.succeed(FurnaceReadings(t_end, set_K, tc_K, session.load_mass_loss(), status))
    return broke
