"""The lab: one front-end (:class:`Lab`) over backends (the SimPy twin, the direct backend,
the hardware), its records, furnace physics and the furnace calibration.

The front-end, the backend protocol, records and thermal model load without SimPy; the
twin's names (:class:`SimLab`, :class:`LabParams`, :func:`random_lab_recipes`) and the direct
backend are imported on first access (PEP 562), so ``from synthgap.envs.lab import SimLab``
works and ``import synthgap.envs.lab`` does not start the simulator.
"""

from __future__ import annotations

import importlib

from .backend import Dose, LabBackend
from .frontend import Lab
from .protocol import LabInputError
from .records import (
    Characterisation,
    FurnaceLog,
    Programme,
    ReferenceReading,
    SampleRecord,
    SampleTruth,
    Segment,
    read_table,
    write_records,
)
from .thermal import FurnaceParams, FurnaceState, FurnaceThermalModel

_LAZY = {"LabParams": ".params", "SimLab": ".simlab", "random_lab_recipes": ".simlab", "TwinBackend": ".twin",
         "DirectBackend": ".direct"}

__all__ = [
    "Lab", "LabBackend", "Dose", "LabInputError", "TwinBackend", "DirectBackend", "Characterisation", "FurnaceLog",
    "Programme", "ReferenceReading",
    "SampleRecord", "SampleTruth", "Segment", "read_table", "write_records", "LabParams",
    "SimLab", "random_lab_recipes", "FurnaceParams", "FurnaceState", "FurnaceThermalModel",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
