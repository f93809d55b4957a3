"""The furnace interlock: when the robot may reach into or out of a furnace.

A robot move into or out of a furnace location (a name containing :data:`FURNACE_LOCATION`)
needs a fresh believed reading at or below ``safe_temperature_K`` *and* the controller's
target setpoint at or below it (a furnace commanded hot is about to be hot; its element is
hotter than the thermocouple). The temperature is read :data:`INTERLOCK_READINGS` times in a
row, each believed and at or below safe, so one stale frame (the trial's late Modbus reply)
cannot open the interlock: the next reading is the true one, or it fell too fast to be
believed. Anything else is refused and journaled ("interlock: ..."). A sensor that keeps
reading a plausible cold value cannot be told from a cold furnace by software: that needs
the furnace's own hardware interlock.

Units: temperatures K.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import InstrumentError, SafetyViolation
from .shield_values import brief_error, real_number

__all__ = ["FURNACE_LOCATION", "INTERLOCK_READINGS", "check_interlock"]

FURNACE_LOCATION = "FURNACE"  # a robot location whose name contains this is inside a furnace
INTERLOCK_READINGS = 2  # fresh readings a furnace move needs, all believed and at or below safe


def check_interlock(location: str, safe_K: float, *, poll: Callable[[], float], read_setpoint: Callable[[], Any],
                    record: Callable[..., None], refuse: Callable[[str, Any, Any, str], SafetyViolation]) -> None:
    """Refuse (journaled) unless the furnace is believed at or below ``safe_K`` and commanded so.

    Args:
        location: the furnace location of the move (for the message).
        safe_K: the safe temperature, K.
        poll: a believed temperature, K, or ``InstrumentError`` (unknown: counted as hot).
        read_setpoint: the controller's target setpoint, K, as the driver returns it.
        record: journals an event, ``record(event, **data)``.
        refuse: journals a refusal and returns the ``SafetyViolation`` to raise,
            ``refuse(command, value, limit, reason)``.
    """
    for _ in range(INTERLOCK_READINGS):
        try:
            temperature = poll()
        except InstrumentError as exc:
            raise refuse("move_sample", None, safe_K, f"interlock: {location}: furnace temperature "
                         f"unknown ({brief_error(exc)}), counted as hot") from exc
        if temperature > safe_K:
            raise refuse("move_sample", temperature, safe_K, f"interlock: {location} above safe temperature")
    try:
        raw = read_setpoint()
    except Exception as exc:  # any failure to read it: unknown, counted as hot
        record("reading_unknown", name="setpoint", reason=brief_error(exc))
        raise refuse("move_sample", None, safe_K, f"interlock: {location}: furnace setpoint "
                     f"unknown ({brief_error(exc)}), counted as hot") from exc
    setpoint, why = real_number(raw)
    if setpoint is None or setpoint <= 0:
        why = why or "at or below absolute zero"
        record("reading_unknown", name="setpoint", raw=raw, reason=why)
        raise refuse("move_sample", raw, safe_K,
                     f"interlock: {location}: furnace setpoint unknown ({why}), counted as hot")
    record("reading", name="setpoint", value=setpoint)
    if setpoint > safe_K:
        raise refuse("move_sample", setpoint, safe_K, f"interlock: {location}: furnace "
                     f"commanded to {setpoint:g} K, above the safe temperature")
