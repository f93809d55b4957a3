"""The limits of a recipe and of a furnace programme: every bound once, with unit and source.

Everything that bounds a recipe or a programme reads it here: the planners' unit box and
the envs' action boxes (:mod:`synthgap.envs.recipe_space`), the spec cards' range tables
(tested against this module), recipe validation (:func:`~.recipe.validate_recipe`) and
the labs' request checks (:mod:`synthgap.envs.lab.validation`, used by the twin and the
hardware lab alike), the furnace model's default maximum, the lab emulator's limits and
the example lab file (``hardware/examples/lab.yaml``, tested to contain these bounds).

A lab may be stricter than these bounds (its furnace, its safety limits), never looser
than what it is asked to run. The categorical parts of a recipe are data, not numbers:
the atmospheres are the names of ``chemistry/data/atmospheres.yaml``
(:func:`~.catalogue.load_atmospheres`); the routes are a system's (target, precursor
set) pairs from its catalogue file.

No simulator or gymnasium import: this module is plain data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = ["Bound", "RECIPE_LIMITS", "RECIPE_BOUNDS", "FURNACE_MAX_TEMPERATURE_K", "PROGRAMME_SETPOINT",
           "PROGRAMME_RATE", "PROGRAMME_MAX_SEGMENTS", "RATE_TOLERANCE"]


@dataclass(frozen=True)
class Bound:
    """A closed range ``[low, high]`` of one quantity.

    Attributes:
        low, high: the bounds, in ``unit``.
        unit: unit of the bounds (and of the quantity everywhere it is stored).
        meaning: what the quantity is, in a chemist's words.
        scale: how a search space spreads it: "linear", or "log" (times and rates span
            decades).
        source: where the numbers come from, or "assumption: ..." with the reasoning.
    """

    low: float
    high: float
    unit: str
    meaning: str
    scale: Literal["linear", "log"]
    source: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low <= self.high):
            raise ValueError(f"a bound needs finite low <= high, got [{self.low}, {self.high}]")
        if self.scale == "log" and self.low <= 0:
            raise ValueError(f"a log-scaled bound needs low > 0, got {self.low}")

    def contains(self, value: float) -> bool:
        """True if ``value`` is a finite number in ``[low, high]``."""
        return (not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
                and self.low <= value <= self.high)

    def describe(self) -> str:
        """``"[low, high] unit"``, as error messages quote it."""
        return f"[{self.low:g}, {self.high:g}] {self.unit}"


#: The highest furnace setpoint of the simulated lab, K: a 1500 degC box furnace.
#: Source: assumption, the common top rating of MoSi2-element lab box furnaces (1500-1800 degC
#: ranges are sold; 1500 degC keeps the twin, the emulator and the example lab file alike).
FURNACE_MAX_TEMPERATURE_K = 1773.15

#: field -> :class:`Bound`: the continuous fields of a :class:`~.recipe.Recipe`, in field order.
RECIPE_LIMITS = MappingProxyType({
    "excess": Bound(
        0.0, 0.30, "fraction", "extra amount of the first precursor (e.g. 0.1 = 10 % excess)", "linear",
        "assumption: solid-state practice weighs a volatile or hygroscopic precursor a few to a few tens "
        "of percent in excess (Li2CO3 5-20 %); 30 % covers it"),
    "milling_time": Bound(
        0.0, 12.0, "h", "ball-milling time before firing", "linear",
        "assumption: 12 h is 6 milling time constants (kinetics.MILLING_TIME_CONSTANT = 2 h): what is "
        "left of the particle size above the mill's floor is exp(-6) = 0.25 % of the unmilled excess"),
    "ramp_rate": Bound(
        1.0, 50.0, "K/min", "heating rate from room temperature to the dwell", "log",
        "assumption: box-furnace programmers run 1 to 50 K/min; faster ramps crack elements and "
        "crucibles"),
    "dwell_temperature": Bound(
        573.0, 1773.0, "K", "furnace setpoint during the dwell (1500 degC box furnace)", "linear",
        "assumption: 300 degC (below it no oxide or carbonate reacts in hours) to the furnace's "
        "1500 degC rating (FURNACE_MAX_TEMPERATURE_K)"),
    "dwell_time": Bound(
        0.1, 48.0, "h", "time at the dwell temperature", "log",
        "assumption: 6 min to two days, the span of published solid-state firings"),
    "cooling_rate": Bound(
        0.5, 50.0, "K/min", "cooling rate back to room temperature", "log",
        "assumption: 0.5 K/min (slow, programmed) to 50 K/min (about a box furnace's natural cooling "
        "from high temperature with the door shut)"),
})

#: field -> (low, high, unit, meaning): :data:`RECIPE_LIMITS` as plain tuples.
RECIPE_BOUNDS: dict[str, tuple[float, float, str, str]] = {
    k: (b.low, b.high, b.unit, b.meaning) for k, b in RECIPE_LIMITS.items()}

#: Setpoints a furnace programme may command, K: 0 degC (no furnace cools below ambient;
#: the hardware's default setpoint low limit) to the furnace maximum. A lab may cap lower.
PROGRAMME_SETPOINT = Bound(
    273.15, FURNACE_MAX_TEMPERATURE_K, "K", "setpoint at either end of a programme segment", "linear",
    "assumption: 0 degC to FURNACE_MAX_TEMPERATURE_K")

#: Rate of a moving programme segment, K/min: the recipe's fastest ramp and cooling rate, so
#: every recipe's programme fits (a dwell moves at 0 K/min).
PROGRAMME_RATE = Bound(
    0.0, max(RECIPE_LIMITS["ramp_rate"].high, RECIPE_LIMITS["cooling_rate"].high), "K/min",
    "setpoint rate of a programme segment, |end - start| / duration", "linear",
    "the recipe's ramp_rate and cooling_rate maxima")

#: Most segments in one programme. Source: assumption, the size of a furnace controller
#: programmer's segment table (of order 10-20); a recipe's programme has 3, the twin's
#: reference run 4.
PROGRAMME_MAX_SEGMENTS = 16

#: Relative slack when a segment's rate is recomputed from its duration (a recipe at the
#: maximum ramp rate gives a segment whose rate is the maximum up to rounding).
RATE_TOLERANCE = 1e-9
