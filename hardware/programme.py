"""Furnace programme execution on the hardware: one firing, segment by segment, through the shield.

For each :class:`~synthgap.envs.lab.records.Segment` of a programme, :class:`ProgrammeRun`

- a ramp or cool: sends the rate limit (:func:`segment_rate`), then the end setpoint; the
  segment lasts as long as the controller needs from where it is at the rate *as sent*
  (the wire's resolution, returned by the shield), not the nominal duration;
- a dwell: declares it to the shield (the watchdog caps it), keeps the rate limit, and
  holds for its duration;

and polls the thermocouple every ``poll_s`` wall s, logging (lab time, nominal setpoint,
reading) at the middle of each Modbus transaction (at high time scales one transaction
lasts hundreds of lab seconds). Time zero of the trace is the first setpoint write. After
the last segment it keeps sampling until the thermocouple reads at or below the safe
temperature, so the load is unloaded only once the interlock allows it.

In dry run (:meth:`ProgrammeRun.rehearse`) every segment's rate and setpoint go to the
shield, which records them and sends nothing.

Units: temperatures K, rates K/min, times s (lab clock unless stated as wall-clock).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from synthgap.envs.chemistry.discretisation import is_dwell
from synthgap.envs.lab.records import Programme, Segment

from .shield import SafetyShield

__all__ = ["ProgrammeRun", "segment_rate"]


def segment_rate(seg: Segment, max_ramp_rate_K_per_min: float) -> float:
    """Rate limit of a segment, K/min (a dwell keeps the cap so a change stays ramped)."""
    if is_dwell(seg.start_K, seg.end_K):
        return max_ramp_rate_K_per_min
    return abs(seg.end_K - seg.start_K) * 60.0 / seg.duration_s


class ProgrammeRun:
    """One firing of ``programme`` on the shield's furnace (see the module docstring).

    Args:
        shield: the safety shield in front of the furnace.
        programme: the segments to run.
        clock: the lab clock, s.
        max_ramp_rate_K_per_min: the rate limit a dwell keeps, K/min.
        safe_temperature_K: sampling goes on after the programme until at or below this, K.
        poll_s: polling period, wall s.
        time_scale: lab s per wall s (None: 1), to turn lab time left into a wall sleep.

    Attributes:
        time_s, setpoint_K, thermocouple_K: the logged trace (lab s since the first
            setpoint write, K, K), one entry per reading.
    """

    def __init__(self, shield: SafetyShield, programme: Programme, *, clock: Callable[[], float],
                 max_ramp_rate_K_per_min: float, safe_temperature_K: float, poll_s: float,
                 time_scale: float | None) -> None:
        self.shield = shield
        self.programme = programme
        self.clock = clock
        self.max_rate = max_ramp_rate_K_per_min
        self.safe_K = safe_temperature_K
        self.poll_s = poll_s
        self.time_scale = time_scale or 1.0
        self.t0: float | None = None  # lab time of the first setpoint write, s
        self.time_s: list[float] = []
        self.setpoint_K: list[float] = []
        self.thermocouple_K: list[float] = []

    def execute(self) -> None:
        """Run every segment, then sample until the furnace is at or below the safe temperature."""
        self.begin()
        self.run_segments(self.programme.segments)
        self.finish()

    def begin(self) -> None:
        """Read the furnace once: the trace's first entry (setpoint and reading both that value)."""
        first = self.shield.poll()
        self.time_s.append(0.0)
        self.setpoint_K.append(first)
        self.thermocouple_K.append(first)
        self._first: float | None = first
        self._last_end_K = first

    def run_segments(self, segments: tuple[Segment, ...] | list[Segment]) -> None:
        """Run ``segments`` after those already run (a live session's next interval)."""
        for seg in segments:
            first, self._first = self._first, None
            self._segment(seg, first)
            self._last_end_K = seg.end_K

    def finish(self) -> None:
        """Sample until the thermocouple reads at or below the safe temperature (the interlock's unload)."""
        while self.thermocouple_K[-1] > self.safe_K:
            time.sleep(self.poll_s)
            self._sample(self._last_end_K)

    def rehearse(self, segments: tuple[Segment, ...] | None = None) -> None:
        """Dry run: each segment's rate and setpoint go to the shield (recorded, never sent)."""
        for seg in self.programme.segments if segments is None else segments:
            self.shield.set_ramp_rate(segment_rate(seg, self.max_rate))
            self.shield.set_setpoint(seg.end_K)

    def _segment(self, seg: Segment, first: float | None) -> None:
        """Run one programme segment: program rate + setpoint, then poll until it ends.

        ``first`` is the first reading, K, for the first segment (it starts from there and
        its trace time is set from the first setpoint write), else None.
        """
        dwell = is_dwell(seg.start_K, seg.end_K)
        if dwell:
            self.shield.start_dwell(seg.duration_s / 3600.0)
            start = self.clock()
        else:
            rate = self.shield.set_ramp_rate(segment_rate(seg, self.max_rate))  # K/min as sent
            before = self.clock()
            self.shield.set_setpoint(seg.end_K)
            start = 0.5 * (before + self.clock())
        if self.t0 is None:
            self.t0 = start
        if first is not None:
            self.time_s[0] = start - self.t0
        begin_K = seg.start_K if first is None else first
        duration = seg.duration_s
        if not dwell:  # the controller ramps from where it is, at the rate it was sent
            duration = abs(seg.end_K - begin_K) * 60.0 / rate
        while True:
            remaining = duration - (self.clock() - start)
            if remaining <= 0:
                break
            time.sleep(min(self.poll_s, remaining / self.time_scale))
            u = min(1.0, (self.clock() - start) / duration) if duration > 0 else 1.0
            self._sample(begin_K + (seg.end_K - begin_K) * u)
        if dwell:
            self.shield.end_dwell()

    def _sample(self, setpoint_K: float) -> None:
        before = self.clock()
        value = self.shield.poll()
        self.time_s.append(0.5 * (before + self.clock()) - self.t0)
        self.setpoint_K.append(setpoint_K)
        self.thermocouple_K.append(value)
