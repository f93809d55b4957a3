"""The twin's parameters: station durations, precursor lots and humidity, furnaces, failures.

:class:`LabParams` is the one object that configures :class:`~synthgap.envs.lab.simlab.SimLab`
(durations in s, masses in g, temperatures in K, fractions as stated); its constructor
raises :class:`~synthgap.envs.lab.protocol.LabInputError` on a value the twin cannot run.
Loads without SimPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .measurement import MeasurementModel, lab_measurement
from .protocol import LabInputError
from .thermal import FURNACE_OFFSET_SD_K, FurnaceParams

__all__ = ["DAY", "STATIONS", "LabParams"]

DAY = 86400.0  # s
#: the stations of the chain besides the furnaces, in chain order.
STATIONS = ("robot", "balance", "mill", "press", "xrd", "property")


@dataclass(frozen=True)
class LabParams:
    """All parameters of the twin (durations in s, rates as stated).

    Attributes:
        stochastic: draw station durations and breakdown/repair times at random
            (gamma, coefficient of variation ``duration_cv``; exponential failures);
            False: every duration is its mean, failures every ``mtbf_h`` exactly.
        duration_cv: coefficient of variation of station durations.
        robot_move_s: one robot-arm transfer, s.
        dispense_s: dispensing and weighing one precursor, s.
        mill_overhead_s: loading/unloading a mill jar, s (plus the milling time).
        press_s: pressing a pellet, s.
        furnace_load_s: loading plus unloading a furnace, s (plus the programme).
        xrd_s: one XRD scan, s.
        property_s: one property measurement, s.
        capacity: station -> number of identical instruments.
        batch_mass_g: target mass a recipe is weighed for, g.
        dispense_rel_sd: relative sd of the dispensed mass around the commanded one.
        balance_sd_g: balance reading noise, g.
        humidity_mean, humidity_amplitude, humidity_sd: lab relative humidity, a daily
            sinusoid (peak at 15:00 lab time) plus white noise, fraction.
        hygroscopicity: water mass fraction a powder takes up at 100 % humidity (each
            lot draws a factor uniform in [0.5, 1.5] of it).
        purity_min: lot purities are uniform in [purity_min, 1].
        samples_per_lot: dispenses per precursor lot.
        furnace: base physical parameters of every furnace (offset replaced per furnace).
        offset_sd_K: sd of the furnaces' initial calibration offsets, K.
        furnace_offsets_K: explicit initial offsets, K (one per furnace), or None to draw.
        offset_walk_K_per_sqrt_day: random-walk rate of the offsets.
        mtbf_h: mean time between furnace failures (calendar), h; inf: never.
        repair_h: mean repair time, h.
        reference_every: sample firings between reference runs of a furnace; 0: none.
        measurement: XRD and property noise and the XRD detection limit
            (:mod:`synthgap.envs.lab.measurement`, the one model every lab uses).
        log_events: keep an ``(event, time)`` log in ``SimLab.log`` (tests, debugging).
    """

    stochastic: bool = True
    duration_cv: float = 0.2
    robot_move_s: float = 30.0
    dispense_s: float = 60.0
    mill_overhead_s: float = 300.0
    press_s: float = 120.0
    furnace_load_s: float = 300.0
    xrd_s: float = 1800.0
    property_s: float = 600.0
    capacity: tuple[tuple[str, int], ...] = (
        ("robot", 1), ("balance", 1), ("mill", 2), ("press", 1), ("xrd", 1), ("property", 1))
    batch_mass_g: float = 2.0
    dispense_rel_sd: float = 0.01
    balance_sd_g: float = 1e-4
    humidity_mean: float = 0.45
    humidity_amplitude: float = 0.15
    humidity_sd: float = 0.03
    hygroscopicity: float = 0.03
    purity_min: float = 0.97
    samples_per_lot: int = 50
    furnace: FurnaceParams = field(default_factory=lambda: FurnaceParams(offset_K=0.0))
    offset_sd_K: float = FURNACE_OFFSET_SD_K
    furnace_offsets_K: tuple[float, ...] | None = None
    offset_walk_K_per_sqrt_day: float = 0.5
    mtbf_h: float = 60 * 24.0
    repair_h: float = 8.0
    reference_every: int = 10
    measurement: MeasurementModel = field(default_factory=lab_measurement)
    log_events: bool = False

    def __post_init__(self) -> None:
        positive = ("robot_move_s", "dispense_s", "mill_overhead_s", "press_s", "furnace_load_s",
                    "xrd_s", "property_s", "batch_mass_g", "mtbf_h", "repair_h")
        for name in positive:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and not math.isnan(v)):
                raise LabInputError(f"LabParams.{name} must be > 0, got {v!r}")
        for name in ("duration_cv", "dispense_rel_sd", "balance_sd_g", "humidity_sd",
                     "hygroscopicity", "offset_sd_K", "offset_walk_K_per_sqrt_day"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise LabInputError(f"LabParams.{name} must be finite and >= 0, got {v!r}")
        if not isinstance(self.measurement, MeasurementModel):
            raise LabInputError(f"LabParams.measurement must be a MeasurementModel, got {self.measurement!r}")
        if not 0 < self.purity_min <= 1:
            raise LabInputError(f"LabParams.purity_min must be in (0, 1], got {self.purity_min!r}")
        if self.samples_per_lot < 1 or self.reference_every < 0:
            raise LabInputError("LabParams.samples_per_lot must be >= 1 and reference_every >= 0")
        caps = dict(self.capacity)
        for s in STATIONS:
            if caps.get(s, 0) < 1:
                raise LabInputError(f"LabParams.capacity needs >= 1 {s!r}, got {caps.get(s)!r}")
