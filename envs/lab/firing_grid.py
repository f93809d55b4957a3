"""The grids a furnace firing of the twin is simulated on, and its reference runs' programme.

One owner for the twin's firing steps (the SimPy furnaces of :mod:`.furnace` and the batched
labs of :mod:`.batched` read them here; importing this module does not import SimPy):
:func:`firing_grid` for one programme, :func:`recipe_firing_grids` for a batch of recipes'
three-segment programmes (the same steps), :func:`reference_programme` and
:func:`reference_grid` for the calibration runs.

Units: K, s.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from synthgap.envs.chemistry.discretisation import (
    COOL_STEPS,
    DWELL_STEPS,
    RAMP_STEPS,
    SETTLE_STEPS,
    is_dwell,
    segment_steps,
)

from .records import Programme, Segment

__all__ = ["REFERENCE_STANDARDS", "firing_grid", "recipe_firing_grids", "reference_grid", "reference_programme"]

#: melting-point standards of the reference runs: name -> melting point, K.
REFERENCE_STANDARDS = {"Al": 933.47, "Ag": 1234.93, "Au": 1337.33}
REFERENCE_STEP_S = 60.0  # s, logging step of the slow reference ramp
REFERENCE_FAST_RATE, REFERENCE_SLOW_RATE = 10.0, 2.0  # K/min


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


def recipe_firing_grids(dwell_K: np.ndarray, ramp_K_per_min: np.ndarray, dwell_h: np.ndarray,
                        cooling_K_per_min: np.ndarray, tau_s: float, ambient_K: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`firing_grid` of B recipes' programmes (``Programme.from_recipe``: ramp from
    ``ambient_K``, dwell, cool) at once: setpoints (B, S) K and steps (B, S) s, S = 64.

    Args:
        dwell_K: (B,) K; ramp_K_per_min: (B,); dwell_h: (B,) h; cooling_K_per_min: (B,).
        tau_s: the furnace's thermal time constant, s; ambient_K: where the programme starts, K.
    """
    Td = np.asarray(dwell_K, dtype=float)[:, None]
    span = np.maximum(Td - ambient_K, 1e-6)
    ramp_s = span * 60.0 / np.asarray(ramp_K_per_min, dtype=float)[:, None]
    dwell_s = np.asarray(dwell_h, dtype=float)[:, None] * 3600.0
    cool_s = span * 60.0 / np.asarray(cooling_K_per_min, dtype=float)[:, None]
    settle = np.minimum(4.0 * tau_s, 0.5 * dwell_s)
    B = Td.shape[0]
    sp = np.concatenate([ambient_K + (Td - ambient_K) * _MIDPOINTS[RAMP_STEPS][None, :], np.repeat(Td, DWELL_STEPS, 1),
                         Td + (ambient_K - Td) * _MIDPOINTS[COOL_STEPS][None, :]], axis=1)
    dt = np.concatenate([np.broadcast_to(ramp_s / RAMP_STEPS, (B, RAMP_STEPS)),
                         np.broadcast_to(settle / SETTLE_STEPS, (B, SETTLE_STEPS)),
                         np.broadcast_to((dwell_s - settle) / (DWELL_STEPS - SETTLE_STEPS),
                                         (B, DWELL_STEPS - SETTLE_STEPS)),
                         np.broadcast_to(cool_s / COOL_STEPS, (B, COOL_STEPS))], axis=1)
    return sp, dt
