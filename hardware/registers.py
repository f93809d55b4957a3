"""The one Modbus register map of the Eurotherm 2000/3200-series furnace controller.

Addresses are the controller's Modbus parameter addresses (holding registers, function
code 3 to read, 6 to write). Temperatures on the wire are degC as fixed-point integers:
``raw = round(value * 10**decimals)``; registers with ``decimals=None`` use the
instrument's configured temperature resolution (``EurothermController(decimals=...)``).
The same map drives the driver and the emulator.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EUROTHERM_REGISTERS", "Register", "register"]


@dataclass(frozen=True)
class Register:
    """One controller parameter.

    Attributes:
        name: Python name of the parameter.
        address: Modbus register address.
        decimals: fixed-point decimal places, or ``None`` for the configured
            temperature resolution.
        writable: whether the controller accepts writes.
        unit: unit on the wire ("degC", "degC/min", "%", "" for bit fields / enums).
        signed: whether the 16-bit value is two's complement.
        doc: one-line description.
    """

    name: str
    address: int
    decimals: int | None
    writable: bool
    unit: str
    signed: bool
    doc: str


_ALL = (
    Register("process_value", 1, None, False, "degC", True,
             "Measured (thermocouple) temperature."),
    Register("target_setpoint", 2, None, True, "degC", True,
             "Target setpoint the working setpoint ramps toward."),
    Register("output_power", 3, 1, False, "%", True,
             "Heater output power, 0-100 %."),
    Register("working_setpoint", 5, None, False, "degC", True,
             "Setpoint currently regulated to (ramps at the rate limit)."),
    Register("programme_status", 23, 0, False, "", False,
             "Programmer state: 1 reset, 2 run, 4 hold, 8 holdback, 16 complete."),
    Register("setpoint_rate_limit", 35, None, True, "degC/min", False,
             "Working-setpoint ramp rate; 0 means no limit (step change)."),
    Register("status_word", 75, 0, False, "", False,
             "Fast status bit field (bit 0 alarm 1, bit 5 sensor break, ...)."),
    Register("setpoint_high_limit", 111, None, True, "degC", True,
             "Highest setpoint the controller accepts."),
    Register("setpoint_low_limit", 112, None, True, "degC", True,
             "Lowest setpoint the controller accepts."),
)

EUROTHERM_REGISTERS: dict[str, Register] = {r.name: r for r in _ALL}
"""Name -> register; the single source of truth for addresses and scaling."""

_BY_ADDRESS: dict[int, Register] = {r.address: r for r in _ALL}


def register(key: str | int) -> Register:
    """Look a register up by name or address; ``KeyError`` if unknown."""
    if isinstance(key, int):
        return _BY_ADDRESS[key]
    return EUROTHERM_REGISTERS[key]
