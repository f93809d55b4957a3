"""A simulated furnace session: the state the twin and the direct backend keep for a live load.

A session runs the furnace's thermal model
(:class:`~synthgap.envs.lab.thermal.FurnaceThermalModel`) on a control grid of
``CONTROL_STEP_S`` steps (each segment's setpoint at the end of each step) and continues the
load's chemistry (:class:`~synthgap.envs.chemistry.incremental.IncrementalFiring`) on the
true sample temperature, averaged over ``KINETIC_STEPS`` chunks of each interval.

Units: K, s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from synthgap.envs.chemistry.incremental import IncrementalFiring

from .records import FurnaceLog, Programme, SampleRecord, Segment
from .thermal import FurnaceThermalModel

__all__ = ["CONTROL_STEP_S", "KINETIC_STEPS", "Session", "control_grid", "kinetic_chunks", "session"]

CONTROL_STEP_S = 60.0  # s, resolution of the furnace simulation in a session
KINETIC_STEPS = 6  # kinetic integration steps per interval (chunks of the control steps)


def control_grid(segments: tuple[Segment, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Working setpoints (S,) K at the end of each control step and the steps' lengths (S,) s:
    each segment in ceil(duration / ``CONTROL_STEP_S``) equal steps."""
    sps: list[float] = []
    dts: list[float] = []
    for s in segments:  # an interval has tens of steps, where numpy's per-call cost dominates: lists
        n = max(1, math.ceil(s.duration_s / CONTROL_STEP_S - 1e-9))
        start, rise = s.start_K, s.end_K - s.start_K
        if n > 256:  # a long cool: numpy (the same operations, the same numbers)
            sps += (start + rise * (np.arange(1, n + 1) / n)).tolist()
        else:
            sps += [start + rise * (k / n) for k in range(1, n + 1)]
        dts += [s.duration_s / n] * n
    return np.array(sps), np.array(dts)


def kinetic_chunks(true_K: np.ndarray, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The true temperatures (S,) K of an interval as at most ``KINETIC_STEPS`` chunk means
    (time-weighted), with the chunks' lengths, s."""
    size = true_K.size
    n = max(1, min(KINETIC_STEPS, size))
    starts = [round(i * (size / n)) for i in range(n)]  # numpy's linspace(0, S, n + 1)[:-1].round()
    length = np.add.reduceat(dt, starts)
    return np.add.reduceat(true_K * dt, starts) / length, length


@dataclass(eq=False)
class Session:
    """One live firing in a simulated furnace.

    Attributes:
        firing_id, recs, atmosphere: the firing and its load.
        model: the furnace's thermal model (state carried between intervals).
        chem: the load's chemistry (state carried between intervals).
        offset: the TRUE calibration offset of this firing, K (thermocouple reads high).
        started_s: lab time the session opened, s.
        furnace: the furnace's index.
        time, setpoint_K, thermocouple_K, true_K, dt: (S,) the logged steps so far.
        segments: the programme as run.
    """

    firing_id: str
    recs: list[SampleRecord]
    atmosphere: str
    model: FurnaceThermalModel
    chem: IncrementalFiring
    offset: float
    started_s: float
    furnace: int = 0
    time: np.ndarray = field(default_factory=lambda: np.zeros(0))
    setpoint_K: np.ndarray = field(default_factory=lambda: np.zeros(0))
    thermocouple_K: np.ndarray = field(default_factory=lambda: np.zeros(0))
    true_K: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dt: np.ndarray = field(default_factory=lambda: np.zeros(0))
    segments: list[Segment] = field(default_factory=list)
    status: str = "ok"

    @property
    def t_end(self) -> float:
        """Session time of the last logged step, s."""
        return float(self.time[-1]) if self.time.size else 0.0

    def log_steps(self, time: np.ndarray, set_K: np.ndarray, tc_K: np.ndarray, true_K: np.ndarray,
                  dt: np.ndarray, segments: tuple[Segment, ...]) -> None:
        """Append an interval's steps and segments to the session's log."""
        self.time = np.concatenate([self.time, time])
        self.setpoint_K = np.concatenate([self.setpoint_K, set_K])
        self.thermocouple_K = np.concatenate([self.thermocouple_K, tc_K])
        self.true_K = np.concatenate([self.true_K, true_K])
        self.dt = np.concatenate([self.dt, dt])
        self.segments.extend(segments)

    def load_mass_loss(self) -> float:
        """Fraction of the whole load's initial mass lost so far (what a TGA balance reads)."""
        return self.chem.load_mass_loss

    def furnace_log(self, finished_s: float) -> FurnaceLog:
        """The session's whole firing as a :class:`FurnaceLog`."""
        return FurnaceLog(self.firing_id, self.furnace, tuple(r.sample_id for r in self.recs),
                          Programme(tuple(self.segments), self.atmosphere), self.status, self.started_s,
                          finished_s, self.time, self.setpoint_K, self.thermocouple_K)


def session(handle: object) -> Session:
    """``handle`` as a :class:`Session` (raises TypeError for a handle of another backend)."""
    if not isinstance(handle, Session):
        raise TypeError(f"not a furnace session of this lab: {handle!r}")
    return handle
