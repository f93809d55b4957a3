"""The one Modbus register map of the Eurotherm 2000/3200-series furnace controller, and
the one place where register values are encoded to and decoded from wire integers.

Addresses are the controller's Modbus parameter addresses (holding registers: function
code 3 or 4 to read, 6 or 16 to write). Temperatures on the wire are degC as fixed-point
integers, ``value = raw / 10**decimals``; registers with ``decimals=None`` use the
instrument's configured temperature resolution (``EurothermController(decimals=...)``).
The driver, the emulator and the tests all call :func:`encode` and :func:`decode`; nothing
else scales a register.

Decoding is strict (an unknown reading is a dangerous reading):

- raw ``0x8000`` (-32768) in a signed register is the controller's "no value" code (what a
  scaled integer carries when the input is broken or over range) and raises
  :class:`~synthgap.hardware.errors.ImplausibleReading`, as does any value outside the
  register's declared ``valid`` range;
- the status word's sensor-break bit (:data:`SENSOR_BREAK_BIT`) and PV-out-of-range bit
  (:data:`PV_OUT_OF_RANGE_BIT`) make the driver refuse the temperature
  (:func:`temperature_refusal`).

Encoding never rounds toward danger (:func:`encode`): the raw integer is computed once,
here, and sent as is (the driver writes it with 0 decimals so minimalmodbus does no
scaling, and minimalmodbus truncates when it scales). Writable registers round *down*
(cooler setpoint, slower ramp, a high limit never above the shield's, a low limit that
never refuses the safe setpoint): the wire value is never above the value the safety
shield checked against its limits, and at most one step below it. A non-zero ramp rate that would go out as raw 0
(which the controller reads as "no limit") is refused, and so is any value that no raw
integer represents within half a resolution step (outside the 16-bit range or the
register's valid range).

Sources and assumptions: addresses follow the Eurotherm 2000-series communications
handbook (HA026230); the status bits (register 75 "instrument status": bit 5 sensor break,
bit 10 PV out of range) are as decoded by an independent open-source Eurotherm driver,
not checked against the handbook here. That ``0x8000`` is the no-value code of a scaled
integer is an assumption (the common Modbus convention; the field trial injected
it): it is never a value a furnace can have, so refusing it is safe
either way. The ``valid`` ranges are assumptions: the process value range is the widest
thermocouple range these controllers linearise (type K from -200 degC, type B to
1820 degC); the rate limit stops at 999.9 degC/min, far above any furnace ramp and below
the raw ``0xFFFF`` an unsigned register could carry. At 2 decimals the 16-bit word itself
limits temperatures to -327.67..327.67 degC.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from synthgap.envs.userfiles import short

from .errors import ImplausibleReading

__all__ = [
    "EUROTHERM_REGISTERS",
    "NO_VALUE_RAW",
    "PV_OUT_OF_RANGE_BIT",
    "SENSOR_BREAK_BIT",
    "ZERO_CELSIUS_K",
    "Register",
    "crc16",
    "decode",
    "encode",
    "register",
    "resolution",
    "temperature_refusal",
    "wire_decimals",
]

ZERO_CELSIUS_K = 273.15  # K at 0 degC: the wire speaks degC, the API K
NO_VALUE_RAW = 0x8000  # raw word: -32768 in a signed register, the "no value" code
SENSOR_BREAK_BIT = 5  # status_word bit: thermocouple open circuit
PV_OUT_OF_RANGE_BIT = 10  # status_word bit: process value over/under the input range
ROUND_TOL_RAW = 1e-6  # raw units: float noise (K -> degC) treated as exactly on a step

_DEGC_RANGE = (-200.0, 1820.0)  # degC; assumption: widest thermocouple range (K low, B high)
_RATE_RANGE = (0.0, 999.9)  # degC/min; assumption, see module docstring
_POWER_RANGE = (-100.0, 100.0)  # %, heat (+) / cool (-) output
_WORD_RANGE = (0.0, 65535.0)  # bit fields and enumerations: any 16-bit pattern


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
        valid: ``(low, high)`` physically valid values in ``unit``, inclusive; decoding
            outside it raises ``ImplausibleReading``, encoding outside it ``ValueError``.
        round_down: encode by rounding toward lower values (the safe side: cooler,
            slower) instead of to the nearest step. True for every writable register.
        zero_is_unlimited: raw 0 means "no limit" (the rate limit): a non-zero request
            that would encode to 0 is refused.
    """

    name: str
    address: int
    decimals: int | None
    writable: bool
    unit: str
    signed: bool
    doc: str
    valid: tuple[float, float]
    round_down: bool = False
    zero_is_unlimited: bool = False


_ALL = (
    Register("process_value", 1, None, False, "degC", True,
             "Measured (thermocouple) temperature.", _DEGC_RANGE),
    Register("target_setpoint", 2, None, True, "degC", True,
             "Target setpoint the working setpoint ramps toward.", _DEGC_RANGE, round_down=True),
    Register("output_power", 3, 1, False, "%", True,
             "Heater output power, -100..100 % (negative: cooling).", _POWER_RANGE),
    Register("working_setpoint", 5, None, False, "degC", True,
             "Setpoint currently regulated to (ramps at the rate limit).", _DEGC_RANGE),
    Register("programme_status", 23, 0, False, "", False,
             "Programmer state: 1 reset, 2 run, 4 hold, 8 holdback, 16 complete.", _WORD_RANGE),
    Register("setpoint_rate_limit", 35, None, True, "degC/min", False,
             "Working-setpoint ramp rate; 0 means no limit (step change).", _RATE_RANGE,
             round_down=True, zero_is_unlimited=True),
    Register("status_word", 75, 0, False, "", False,
             "Fast status bit field (bit 0 alarm 1, bit 5 sensor break, bit 10 PV out of "
             "range, ...).", _WORD_RANGE),
    Register("setpoint_high_limit", 111, None, True, "degC", True,
             "Highest setpoint the controller accepts.", _DEGC_RANGE, round_down=True),
    Register("setpoint_low_limit", 112, None, True, "degC", True,
             "Lowest setpoint the controller accepts.", _DEGC_RANGE, round_down=True),
)

EUROTHERM_REGISTERS: dict[str, Register] = {r.name: r for r in _ALL}
"""Name -> register; the single source of truth for addresses and scaling."""

_BY_ADDRESS: dict[int, Register] = {r.address: r for r in _ALL}


def crc16(data: bytes) -> bytes:
    """Modbus RTU CRC-16 (poly 0xA001, init 0xFFFF), low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return struct.pack("<H", crc)


def register(key: str | int) -> Register:
    """Look a register up by name or address; ``KeyError`` if unknown."""
    if isinstance(key, int):
        return _BY_ADDRESS[key]
    return EUROTHERM_REGISTERS[key]


def wire_decimals(reg: Register, configured: int) -> int:
    """Decimal places of ``reg`` on the wire, given the configured temperature resolution."""
    if configured not in (0, 1, 2):
        raise ValueError(f"decimals {configured!r} not in (0, 1, 2)")
    return configured if reg.decimals is None else reg.decimals


def resolution(reg: Register, configured: int) -> float:
    """One raw step of ``reg`` in its wire unit (0.1 degC at 1 decimal)."""
    return 10.0 ** -wire_decimals(reg, configured)


def _raw_bounds(reg: Register) -> tuple[int, int]:
    # -32768 is the no-value code, never a value
    return (-32767, 32767) if reg.signed else (0, 65535)


def decode(reg: Register, raw: int, configured: int) -> float:
    """Wire word -> value in ``reg.unit``.

    Args:
        reg: the register the word was read from.
        raw: the 16-bit word as received, 0..65535.
        configured: configured temperature resolution (decimal places).

    Raises:
        ImplausibleReading: the no-value code ``0x8000`` in a signed register, or a value
            outside ``reg.valid``.
        ValueError: ``raw`` is not a 16-bit word (a caller bug, not a reading).
    """
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 0xFFFF:
        raise ValueError(f"{reg.name}: raw word {str(raw)[:20]!r} is not in 0..65535")
    if reg.signed and raw == NO_VALUE_RAW:
        raise ImplausibleReading(reg.name, f"0x{raw:04X}",
                                 "the controller's no-value code (sensor break or over range)")
    signed = raw - 0x10000 if reg.signed and raw > 0x7FFF else raw
    value = signed / 10 ** wire_decimals(reg, configured)
    low, high = reg.valid
    if not low <= value <= high:
        raise ImplausibleReading(reg.name, f"0x{raw:04X}",
                                 f"{value:g} {reg.unit} is outside the valid {low:g}..{high:g}")
    return value


def encode(reg: Register, value: float, configured: int) -> int:
    """Value in ``reg.unit`` -> the raw 16-bit word to send (two's complement if signed).

    The raw integer is ``floor(value * 10**decimals)`` for writable registers (toward the
    safe side: the wire value is at most one step below the request, never above it) and
    the nearest step (ties away from zero) otherwise; values within ``ROUND_TOL_RAW`` of a
    step count as on it (float noise of the K -> degC conversion). ``decode(encode(v))``
    is the value actually on the wire.

    Raises:
        ValueError: naming register, value and resolution, if ``value`` is not a finite
            number, no raw integer represents it within half a step (16-bit range or
            ``reg.valid`` exceeded), or a non-zero rate would go out as raw 0 (no limit).
    """
    dec = wire_decimals(reg, configured)
    step = 10.0 ** -dec
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{reg.name}: value {short(value, 20)} is not a finite number") from None
    if not math.isfinite(value):
        raise ValueError(f"{reg.name}: value {value!r} is not finite")
    scaled = value * 10**dec
    low, high = _raw_bounds(reg)
    v_low, v_high = max(reg.valid[0], low * step), min(reg.valid[1], high * step)
    # rounding down may not move below the range, so its low end has no half-step slack
    slack_low = 0.0 if reg.round_down else step / 2
    if not v_low - slack_low - 1e-9 <= value <= v_high + step / 2:
        raise ValueError(
            f"{reg.name}: {value:.6g} {reg.unit} is not representable at resolution "
            f"{step:g} {reg.unit} (valid {v_low:g}..{v_high:g})")
    if reg.round_down:
        raw = math.floor(scaled + ROUND_TOL_RAW)
    else:
        raw = int(math.copysign(math.floor(abs(scaled) + 0.5 + ROUND_TOL_RAW), scaled))
    # inside the half step beyond an end: the end itself (a move of less than half a step,
    # and only downward for a round-down register)
    raw = min(max(raw, math.ceil(v_low / step - ROUND_TOL_RAW)),
              math.floor(v_high / step + ROUND_TOL_RAW))
    if reg.zero_is_unlimited and raw == 0 and value > 0:
        raise ValueError(
            f"{reg.name}: {value:g} {reg.unit} would go out as raw 0, which the controller "
            f"reads as no limit; the smallest non-zero rate at resolution {step:g} is {step:g}")
    return raw & 0xFFFF


def temperature_refusal(status: int) -> str | None:
    """Why a status word makes the process value unbelievable, or ``None`` if it does not."""
    if status >> SENSOR_BREAK_BIT & 1:
        return f"status bit {SENSOR_BREAK_BIT} (sensor break) is set"
    if status >> PV_OUT_OF_RANGE_BIT & 1:
        return f"status bit {PV_OUT_OF_RANGE_BIT} (PV out of range) is set"
    return None
