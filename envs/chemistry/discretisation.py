"""What a dwell is, and how many steps a firing is integrated in: one definition for all.

A furnace programme is a sequence of segments over which the setpoint moves linearly
from ``start_K`` to ``end_K``. A segment is a **dwell** when its setpoint does not move
(``start_K == end_K``); its ``kind`` label ("ramp", "dwell", "cool") is free text for the
log and never decides anything. A moving segment is a ramp (rising) or a cool (falling).

Every firing is integrated in the same number of steps per segment, whoever fires it:
the kinetics' ideal programmes (:func:`~.firing.programme_trace` and the compiled
kernel of :mod:`~.kinetics`), the twin's furnace runs
(:func:`synthgap.envs.lab.simlab.firing_grid`, through the furnace thermal model) and
the hardware lab's segment execution. A recipe's three-segment programme is
``RAMP_STEPS + DWELL_STEPS + COOL_STEPS`` = 64 steps.

Steps sit at segment midpoints (a ramp step holds the setpoint at the middle of its
part of the ramp). In the twin the first ``SETTLE_STEPS`` of a dwell's steps are short
ones over the furnace's overshoot (``min(4 tau, dwell / 2)``), the rest share what is left.
"""

from __future__ import annotations

__all__ = ["RAMP_STEPS", "DWELL_STEPS", "COOL_STEPS", "SETTLE_STEPS", "is_dwell", "segment_steps"]

RAMP_STEPS = 24  # integration steps of a rising segment
DWELL_STEPS = 24  # integration steps of a dwell (SETTLE_STEPS of them over the overshoot in the twin)
COOL_STEPS = 16  # integration steps of a falling segment
SETTLE_STEPS = 4  # of a dwell's steps, the short ones over the furnace's overshoot (twin)


def is_dwell(start_K: float, end_K: float) -> bool:
    """True if a segment from ``start_K`` to ``end_K`` (K) holds its setpoint: a dwell."""
    return start_K == end_K


def segment_steps(start_K: float, end_K: float) -> int:
    """Integration steps of a segment from ``start_K`` to ``end_K`` (K): dwell, ramp or cool."""
    if is_dwell(start_K, end_K):
        return DWELL_STEPS
    return RAMP_STEPS if end_K > start_K else COOL_STEPS
