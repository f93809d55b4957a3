"""A furnace driven live: a load in one furnace, its setpoint chosen interval by interval.

``Lab.open_furnace(sample_ids)`` puts prepared crucibles in a furnace and returns a
:class:`FurnaceSession`. Each :meth:`FurnaceSession.hold` moves the setpoint toward a value
at a rate limit and holds it for an interval (a ramp segment, then a dwell, as a controller's
programmer would run them); the readings of the interval come back at once
(:class:`FurnaceReadings`: the logged thermocouple, and the load's mass loss where the
furnace has a thermogravimetric balance). :meth:`FurnaceSession.unload` cools to ambient at
a rate, and the load counts as fired: ``Lab.characterise`` then measures each crucible.
The programme as run (every segment) is the firing's ``programme``.

Every backend runs a session through the same three steps (``open_firing``,
``continue_firing``, ``close_firing``): the twin and the direct backend on the furnace's
thermal model (lag, overshoot, drift), the hardware through the shield.

Units: K, K/min, s.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from . import validation
from .protocol import LabInputError
from .records import FurnaceLog, FurnaceReadings, Programme, SampleRecord, Segment

__all__ = ["FurnaceReadings", "FurnaceSession", "hold_segments"]

RAMP_EPS_K = 1e-6  # K: a setpoint change below this is no ramp


def hold_segments(current_K: float, setpoint_K: float, duration_s: float, rate_K_per_min: float
                  ) -> tuple[Segment, ...]:
    """The programme segments of one interval: from ``current_K`` toward ``setpoint_K`` at
    ``rate_K_per_min`` (a ramp, or a cool downward), then a dwell for the rest of
    ``duration_s``; a ramp that cannot arrive in time stops where the interval ends."""
    change = setpoint_K - current_K
    if abs(change) < RAMP_EPS_K:
        return (Segment("dwell", setpoint_K, setpoint_K, duration_s),)
    ramp_s = abs(change) * 60.0 / rate_K_per_min
    kind = "ramp" if change > 0 else "cool"
    if ramp_s >= duration_s:
        end = current_K + math.copysign(rate_K_per_min * duration_s / 60.0, change)
        return (Segment(kind, current_K, end, duration_s),)
    return (Segment(kind, current_K, setpoint_K, ramp_s), Segment("dwell", setpoint_K, setpoint_K, duration_s - ramp_s))


class FurnaceSession:
    """A load in a furnace, driven interval by interval (made by ``Lab.open_furnace``, which
    passes its backend, its caps and what to do with the log once unloaded).

    Attributes:
        sample_ids: the crucibles of the load.
        setpoint_K: the setpoint at the end of the last interval, K (ambient at first).
        elapsed_s: lab time since the session opened, s.
        segments: the programme as run so far.
        log: the firing's :class:`FurnaceLog` once unloaded, else None.
    """

    def __init__(self, backend: Any, caps: validation.LabCaps, recs: Sequence[SampleRecord], handle: object,
                 atmosphere: str, on_unloaded: Callable[[Sequence[SampleRecord], FurnaceLog], None]) -> None:
        self._backend, self._caps, self._recs, self._handle = backend, caps, list(recs), handle
        self._on_unloaded = on_unloaded
        self.sample_ids = tuple(r.sample_id for r in recs)
        self.atmosphere = atmosphere
        self.setpoint_K = backend.ambient_K
        self.segments: list[Segment] = []
        self.log: FurnaceLog | None = None
        self._opened_s = backend.now
        self._failed = False

    @property
    def elapsed_s(self) -> float:
        """Lab time since the session opened, s."""
        return self._backend.now - self._opened_s

    @property
    def open(self) -> bool:
        """True until the load is unloaded (or the furnace broke down)."""
        return self.log is None and not self._failed

    def _check_open(self) -> None:
        if self._failed:
            raise LabInputError(f"the session of {list(self.sample_ids)} is over: the furnace broke down")
        if self.log is not None:
            raise LabInputError(f"the session of {list(self.sample_ids)} is over: the load was unloaded")

    def hold(self, setpoint_K: float, duration_s: float, max_rate_K_per_min: float) -> FurnaceReadings:
        """Move the setpoint toward ``setpoint_K`` (K) at most at ``max_rate_K_per_min``, hold it
        for the rest of ``duration_s`` s; return the interval's readings.

        Raises:
            LabInputError: the session is over, or a value outside the programme and lab limits.
        """
        self._check_open()
        for name, v, unit in (("duration_s", duration_s, "s"), ("max_rate_K_per_min", max_rate_K_per_min, "K/min")):
            if not (isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0):
                raise LabInputError(f"{name} must be a finite number > 0 {unit}, got {v!r}")
        setpoint_K = validation.check_setpoint(setpoint_K, self._caps)
        segments = hold_segments(self.setpoint_K, setpoint_K, float(duration_s), float(max_rate_K_per_min))
        validation.check_programme(Programme(segments, self.atmosphere), self._caps)
        return self._run(segments)

    def _run(self, segments: tuple[Segment, ...]) -> FurnaceReadings:
        b = self._backend
        readings = b.execute(b.continue_firing(self._handle, segments), self.sample_ids[0])
        self.segments.extend(segments)
        self.setpoint_K = segments[-1].end_K
        if readings.status == "failed":
            self._failed = True
            self._close()
        return readings

    def unload(self, cooling_rate_K_per_min: float) -> FurnaceLog:
        """Cool to ambient at ``cooling_rate_K_per_min`` and take the load out; the crucibles
        count as fired (measure them with ``Lab.characterise``). Returns the firing's log."""
        self._check_open()
        ambient = self._backend.ambient_K
        if not (isinstance(cooling_rate_K_per_min, int | float) and math.isfinite(cooling_rate_K_per_min)
                and cooling_rate_K_per_min > 0):
            raise LabInputError(f"cooling_rate_K_per_min must be a finite number > 0 K/min, "
                                f"got {cooling_rate_K_per_min!r}")
        if self.setpoint_K - ambient > RAMP_EPS_K:
            cool = Segment("cool", self.setpoint_K, ambient,
                           (self.setpoint_K - ambient) * 60.0 / cooling_rate_K_per_min)
            validation.check_programme(Programme((cool,), self.atmosphere), self._caps)
            readings = self._run((cool,))
            if readings.status == "failed":
                assert self.log is not None
                return self.log
        return self._close()

    def _close(self) -> FurnaceLog:
        b = self._backend
        log = b.execute(b.close_firing(self._handle), self.sample_ids[0])
        self.log = log
        self._on_unloaded(self._recs, log)
        return log
