"""The lab's measurement model: what XRD and the property rig report of a fired sample.

One model for every lab that measures a sample: the SimPy twin
(:mod:`synthgap.envs.lab.simlab`), the benchmark's direct evaluator
(:mod:`synthgap.agents.evaluator`) and the emulated XRD instrument PC
(:mod:`synthgap.hardware.emulators.lab`). Each draws its own standard-normal noise (from
its own seeded generator, in its own order) and hands it to :class:`MeasurementModel`.

* XRD: each true weight fraction plus N(0, ``xrd_sd``), negatives read 0, phases below
  ``xrd_detection_limit`` read 0, the rest renormalised to sum 1;
* property: the true value times (1 + N(0, ``property_rel_sd``)), never below 0.

The defaults are the module constants below, read when a model is made
(:func:`lab_measurement`), so there is one place to change them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["PROPERTY_REL_SD", "SUCCESS_PURITY", "XRD_DETECTION_LIMIT", "XRD_SD", "MeasurementModel",
           "lab_measurement"]

XRD_DETECTION_LIMIT = 0.02  # weight fraction below which XRD reports a phase as absent
XRD_SD = 0.01  # absolute sd of each measured weight fraction
PROPERTY_REL_SD = 0.03  # relative sd of the property measurement

SUCCESS_PURITY = 0.5
"""Weight fraction of the target at or above which an experiment is a **success**: the
target formed as the majority phase (the A-Lab's criterion, >50 % target yield). The
benchmark's evaluator judges the measured XRD fraction against it, the reward's process
window the noise-free fraction at each furnace offset."""


@dataclass(frozen=True)
class MeasurementModel:
    """Noise and detection limit of XRD and of the property measurement.

    Attributes:
        xrd_detection_limit: weight fraction below which XRD reports 0, in [0, 1).
        xrd_sd: absolute sd of each XRD weight fraction, >= 0.
        property_rel_sd: relative sd of the property measurement, >= 0.
    """

    xrd_detection_limit: float
    xrd_sd: float
    property_rel_sd: float

    def __post_init__(self) -> None:
        for name in ("xrd_detection_limit", "xrd_sd", "property_rel_sd"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"MeasurementModel.{name} must be finite and >= 0, got {v!r}")
        if self.xrd_detection_limit >= 1:
            raise ValueError(f"MeasurementModel.xrd_detection_limit must be < 1, got {self.xrd_detection_limit!r}")

    def xrd(self, true_fractions: np.ndarray, z: np.ndarray) -> np.ndarray:
        """(..., P) measured weight fractions from the true ones (..., P) and standard normals z
        (same shape): one scan per row."""
        meas = np.maximum(np.asarray(true_fractions, dtype=float) + self.xrd_sd * np.asarray(z), 0.0)
        meas[meas < self.xrd_detection_limit] = 0.0
        total = meas.sum(axis=-1, keepdims=True)
        return np.divide(meas, total, out=meas, where=total > 0)

    def property(self, true_value: float, z: float) -> float:
        """The measured property from the true one and a standard normal z (same unit, >= 0)."""
        return max(float(true_value) * (1.0 + self.property_rel_sd * float(z)), 0.0)

    def properties(self, true_values: np.ndarray, z: np.ndarray) -> np.ndarray:
        """:meth:`property` of each of (B,) true values with (B,) standard normals."""
        return np.maximum(np.asarray(true_values, dtype=float) * (1.0 + self.property_rel_sd * np.asarray(z)), 0.0)


def lab_measurement() -> MeasurementModel:
    """The lab's measurement model, from this module's constants (read at call time)."""
    return MeasurementModel(XRD_DETECTION_LIMIT, XRD_SD, PROPERTY_REL_SD)
