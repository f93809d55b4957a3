"""The shop floor of the twin: what its furnaces and its sample chain share.

One :class:`LabFloor` holds the SimPy clock, the one random generator, the parameters, the
stations (robot, balance, mills, press, XRD, property rig) and the logs every part writes
to (events, instrument uses, queue lengths, furnace logs and their truth). It draws the
stochastic durations and numbers the firings, so a sample firing and a reference run take
their ids from one counter.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from .params import STATIONS, LabParams
from .records import FurnaceLog, SampleRecord
from .station import Station

__all__ = ["LabFloor"]


class LabFloor:
    """Clock, generator, stations and logs shared by the furnaces and the chain.

    Attributes:
        env: the SimPy environment (lab time in s).
        rng: the one random generator of the twin.
        config: the twin's parameters.
        stations: station name -> :class:`~synthgap.envs.lab.station.Station`.
        log: ``(event, lab time s)`` tuples when ``config.log_events``.
        firings: every :class:`FurnaceLog` (sample and reference runs), in finishing order.
        firing_truth: one dict per firing (id, furnace, kind, status, true offset K,
            drift sd K), the simulator truth behind ``firings``.
        usage: ``(station, instrument id, job, start s, end s)`` for every instrument use.
        queue_log: ``(time s, station, queue length)`` at every queue change.
        fired: samples fired successfully whose chemistry is not evaluated yet.
    """

    def __init__(self, config: LabParams, rng: np.random.Generator) -> None:
        self.config = config
        self.rng = rng
        self.env = simpy.Environment()
        self.log: list[tuple[str, float]] = []
        self.firings: list[FurnaceLog] = []
        self.firing_truth: list[dict[str, Any]] = []
        self.usage: list[tuple[str, str, str, float, float]] = []
        self.queue_log: list[tuple[float, str, int]] = []
        self.fired: list[Any] = []
        caps = dict(config.capacity)
        self.stations = {s: Station(self.env, s, caps[s]) for s in STATIONS}
        self._n_firings = 0

    def next_firing_id(self) -> str:
        """A new firing id, ``F00001`` first."""
        self._n_firings += 1
        return f"F{self._n_firings:05d}"

    def event(self, text: str) -> None:
        """Log ``text`` at the current lab time (only when ``config.log_events``)."""
        if self.config.log_events:
            self.log.append((text, float(self.env.now)))

    def duration(self, mean: float) -> float:
        """A stochastic duration around ``mean`` s (gamma, cv ``config.duration_cv``), s."""
        if not self.config.stochastic or self.config.duration_cv == 0:
            return mean
        k = 1.0 / self.config.duration_cv**2
        return float(self.rng.gamma(k, mean / k))

    def use(self, station: str, rec: SampleRecord, mean_s: float) -> Generator:
        """Process: hold one unit of ``station`` for a stochastic duration around ``mean_s`` s."""
        res = self.stations[station]
        env = self.env
        t0 = env.now
        unit = res.acquire()
        if not isinstance(unit, int):  # every unit busy: wait in line
            self.queue_log.append((t0, station, len(res.queue)))
            try:
                unit = yield unit
            except BaseException:
                res.cancel(unit)
                raise
            self.queue_log.append((env.now, station, len(res.queue)))
        start = env.now
        uid = f"{station}-{unit}"
        if self.config.log_events:
            self.event(f"{rec.sample_id} {uid} start")
        try:
            yield env.timeout(self.duration(mean_s))
        finally:
            res.release(unit)
        if self.config.log_events:
            self.event(f"{rec.sample_id} {uid} end")
        self.usage.append((station, uid, rec.sample_id, start, float(env.now)))
        rec.waits_s[station] = rec.waits_s.get(station, 0.0) + (start - t0)
        rec.instruments[station] = uid
