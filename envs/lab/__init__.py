"""The lab: furnace physics, the SimPy twin, its records and the furnace calibration.

The protocol, records and thermal model load without SimPy; the twin's names
(:class:`SimLab`, :class:`LabParams`, :func:`random_lab_recipes`) are imported from
:mod:`.simlab` on first access (PEP 562), so ``from synthgap.envs.lab import SimLab`` works
and ``import synthgap.envs.lab.protocol`` does not start the simulator.
"""

from __future__ import annotations

import importlib

from .protocol import Lab, LabInputError
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

_LAZY = {"LabParams": ".params", "SimLab": ".simlab", "random_lab_recipes": ".simlab"}

__all__ = [
    "Lab", "LabInputError", "Characterisation", "FurnaceLog", "Programme", "ReferenceReading",
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
