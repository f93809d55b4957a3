"""The lab: furnace physics, the SimPy twin, its records and the furnace calibration."""

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
from .simlab import LabParams, SimLab, random_lab_recipes
from .thermal import FurnaceParams, FurnaceState, FurnaceThermalModel

__all__ = [
    "Lab", "LabInputError", "Characterisation", "FurnaceLog", "Programme", "ReferenceReading",
    "SampleRecord", "SampleTruth", "Segment", "read_table", "write_records", "LabParams",
    "SimLab", "random_lab_recipes", "FurnaceParams", "FurnaceState", "FurnaceThermalModel",
]
