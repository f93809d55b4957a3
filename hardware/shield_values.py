"""What the safety shield accepts: real numbers, wire-safe names, believable temperatures.

- :func:`real_number`: a value is a number only if it is a real finite one (int, float,
  numpy scalar); bool, NaN, inf, an int beyond float range, str, None, arrays are not, and
  the reason says which. The shield refuses anything else before any comparison.
- Name patterns (:data:`LOCATION`, :data:`PRECURSOR_NAME`, :data:`SAMPLE_ID`): one ASCII
  word each, so a newline inside a name cannot inject a second command into a station line.
- :func:`believable_temperature`: an unknown temperature counts as hot. A reading is
  believed only if it is a real finite number, lies in (0 K, ``max_plausible_temperature_K``],
  and did not fall faster than the furnace can cool (``max_cooling_rate_K_per_min``, plus
  ``COOLING_ALLOWANCE_K``) since the last believed reading: a stale 0 degC frame a second
  after 1400 K is not believed.

Units: temperatures K, cooling rates K/min, times s (the furnace's clock), masses g.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from synthgap.envs.userfiles import short

from .config import SafetyLimits
from .errors import ImplausibleReading

__all__ = ["COOLING_ALLOWANCE_K", "DOSE_DECIMALS", "DOSE_RESOLUTION_G", "LOCATION", "PRECURSOR_NAME", "SAMPLE_ID",
           "believable_temperature", "brief_error", "real_number"]

LOCATION = re.compile(r"[A-Z][A-Z0-9_]{0,31}")  # robot location names (the robot driver's rule)
PRECURSOR_NAME = re.compile(r"[A-Za-z][A-Za-z0-9()._-]{0,31}")  # one ASCII word on a station line
SAMPLE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # a file-name-safe sample id
DOSE_DECIMALS = 5  # decimal places of the mass in the robot's DOSE command, g
DOSE_RESOLUTION_G = 10.0**-DOSE_DECIMALS  # smallest dose the DOSE command can express, g
COOLING_ALLOWANCE_K = 10.0  # K allowed on top of the cooling rate: reading noise, wire resolution
ERROR_CHARS = 160  # characters of a driver error quoted in a refusal reason


def real_number(value: Any) -> tuple[float | None, str]:
    """``(value as float, "")`` for a real finite number (int, float, numpy scalar), else
    ``(None, why)``: bool, NaN, inf, an int beyond float range, str, None, arrays, ..."""
    if isinstance(value, bool | np.bool_):
        return None, "a bool, not a number"
    if isinstance(value, int | np.integer):
        try:
            number = float(value)
        except OverflowError:
            return None, "an integer too large for a float"
    elif isinstance(value, float | np.floating):
        number = float(value)
    else:
        return None, f"not a real number (a {type(value).__name__})"
    if not math.isfinite(number):
        return None, "not finite"
    return number, ""


def brief_error(exc: BaseException) -> str:
    """``Type: message`` of an error, cut to ``ERROR_CHARS`` for a refusal reason."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS] + "..."


def believable_temperature(raw: Any, now: float, believed: tuple[float, float] | None,
                           limits: SafetyLimits) -> float:
    """``raw`` as a temperature, K, or ``ImplausibleReading`` (module docstring).

    Args:
        raw: what the driver returned.
        now: the furnace's clock at the reading, s.
        believed: (K, furnace clock s) of the last believed reading, or None.
        limits: the plausible range and cooling rate.
    """
    value, why = real_number(raw)
    if value is None:
        raise ImplausibleReading("temperature", short(raw), why)
    lim = limits
    if value <= 0.0:
        raise ImplausibleReading("temperature", value, "at or below absolute zero")
    if value > lim.max_plausible_temperature_K:
        raise ImplausibleReading("temperature", value, f"above max_plausible_temperature_K="
                                 f"{lim.max_plausible_temperature_K:g} K")
    if believed is not None:
        last, then = believed
        elapsed = max(now - then, 0.0)
        floor = last - lim.max_cooling_rate_K_per_min * elapsed / 60.0 - COOLING_ALLOWANCE_K
        if value < floor:
            raise ImplausibleReading(
                "temperature", value,
                f"fell {last - value:.1f} K in {elapsed:.3g} s from the last believed {last:.1f} K, "
                f"faster than max_cooling_rate_K_per_min={lim.max_cooling_rate_K_per_min:g} "
                "(a stale or zero frame?)")
    return value
