"""Eurotherm 2000/3200-series furnace controller over Modbus RTU (minimalmodbus framing).

Units: the controller speaks degC on the wire; this driver's API speaks K. The
conversion (``K = degC + 273.15``; rates are equal in K/min and degC/min) happens only
here, at the driver edge; scaling to and from wire integers happens only in
:mod:`synthgap.hardware.registers`. Validators are strict: they raise, never clamp.

The line discipline (drain after a fault, replies believed only when they match the
request and nothing follows them, exception codes read from the frame) and the retry
policy (reads only; writes are sent once) are :mod:`synthgap.hardware.modbus_line`'s:
the controller talks through one :class:`~synthgap.hardware.modbus_line.ModbusLine`.

The temperature is read as the block [process value, target setpoint] (4 data bytes;
Eurotherm 2000/3200 controllers answer a block read of parameters 1-2), so no stale
single-register reply can pass for it, and then the status word: the sensor-break and
PV-out-of-range bits make it raise ``ImplausibleReading``. That is one more transaction
per temperature, every time, since a broken thermocouple must never read as a value:
about 10 ms more at 19200 baud on a real line; on a pty with the emulator a temperature
measured 9.4 ms against 4.6 ms for a single-register read.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import serial

from synthgap.envs.userfiles import short

from .errors import ImplausibleReading
from .modbus_line import DEFAULT_TIMEOUT_S, MODBUS_EXCEPTIONS, ModbusLine, check_slave
from .registers import EUROTHERM_REGISTERS, ZERO_CELSIUS_K, decode, encode, temperature_refusal

__all__ = ["MODBUS_EXCEPTIONS", "ZERO_CELSIUS_K", "EurothermController"]

log = logging.getLogger(__name__)

DEFAULT_BAUDRATE = 19200  # baud, Eurotherm factory default

_API_REGISTERS: dict[str, tuple[str, float]] = {  # writable property -> (register, offset)
    "setpoint": ("target_setpoint", ZERO_CELSIUS_K),
    "ramp_rate": ("setpoint_rate_limit", 0.0),
    "setpoint_high_limit": ("setpoint_high_limit", ZERO_CELSIUS_K),
    "setpoint_low_limit": ("setpoint_low_limit", ZERO_CELSIUS_K),
}


def _line_setting(name: str, doc: str) -> property:
    """A setting kept on the controller's :class:`ModbusLine` (its one owner), read and set here."""
    return property(lambda self: getattr(self.line, name),
                    lambda self, value: setattr(self.line, name, value), doc=doc)


class EurothermController:
    """One Eurotherm controller on an injected pyserial-like port.

    Args:
        port: an open pyserial port (``serial.serial_for_url(url)``) or any object with
            ``open/close/read/write/is_open/in_waiting`` (e.g. ``hardware.testing.ScriptedPort``).
        slave: Modbus slave address, 1-247.
        decimals: configured temperature resolution (decimal places on the wire), 0-2.
        timeout_s: read timeout per attempt, s (written to ``port.timeout``).
        retries: extra attempts for reads after a timeout / corrupt reply / busy.
        backoff_s: delay before the first retry, s; doubles each retry.
        turnaround_s: line silence that ends a drain, s (default
            ``max(MIN_TURNAROUND_S, TURNAROUND_PER_TIMEOUT * timeout_s)``); must exceed the
            latest a slave may still answer after ``timeout_s``.
        drain_max_s: longest drain before giving up with ``ProtocolError``, s (default
            ``DRAIN_BOUND_FACTOR * turnaround_s``).
        check_status: read the status word with every temperature (default True).
        clock: monotonic clock, s; sleep: sleep function (both injectable for tests).

    Attributes:
        line: the Modbus line the controller talks over (``port``, ``slave``, ``timeout_s``,
            ``retries``, ``backoff_s``, ``turnaround_s`` and ``drain_max_s`` live there and
            are read and set through the controller's attributes of the same names).
        last_sent: writable property name -> the value that last went on the wire, in API
            units (K, K/min): what a journal must record.
    """

    port = _line_setting("port", "The injected pyserial-like port.")
    slave = _line_setting("slave", "Modbus slave address, 1-247.")
    timeout_s = _line_setting("timeout_s", "Read timeout per attempt, s.")
    retries = _line_setting("retries", "Extra attempts for a read after a timeout / corrupt reply / busy.")
    backoff_s = _line_setting("backoff_s", "Delay before the first retry, s; doubles each retry.")
    turnaround_s = _line_setting("turnaround_s", "Line silence that ends a drain, s.")
    drain_max_s = _line_setting("drain_max_s", "Longest drain before giving up with ``ProtocolError``, s.")

    def __init__(self, port: Any, slave: int = 1, decimals: int = 1,
                 timeout_s: float = DEFAULT_TIMEOUT_S, retries: int = 2,
                 backoff_s: float = 0.02, turnaround_s: float | None = None,
                 drain_max_s: float | None = None, check_status: bool = True,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        check_slave(slave)  # first, as the line would: one order of refusals
        if decimals not in (0, 1, 2) or isinstance(decimals, bool):
            raise ValueError(f"decimals {str(decimals)[:20]!r} not in (0, 1, 2)")
        self.line = ModbusLine(port, slave, timeout_s, retries, backoff_s, turnaround_s, drain_max_s,
                               clock=clock, sleep=sleep, logger=log)
        self.decimals = decimals
        self.check_status = check_status
        self.last_sent: dict[str, float] = {}

    @classmethod
    def from_url(cls, url: str, baudrate: int = DEFAULT_BAUDRATE, **kwargs: Any
                 ) -> EurothermController:
        """Open ``url`` (``/dev/ttyUSB0``, ``socket://host:port``, ``loop://``) and connect."""
        port = serial.serial_for_url(url, baudrate=baudrate, bytesize=8,
                                     parity=serial.PARITY_NONE, stopbits=1,
                                     timeout=kwargs.get("timeout_s", DEFAULT_TIMEOUT_S))
        return cls(port, **kwargs)

    def close(self) -> None:
        """Close the port."""
        self.port.close()

    def __enter__(self) -> EurothermController:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- raw register access ---------------------------------------------------------
    def read(self, name: str) -> float:
        """Read register ``name`` in its wire unit (degC, degC/min, %, raw int).

        Raises:
            ImplausibleReading: the no-value code or a value outside the register's
                valid range (see :func:`synthgap.hardware.registers.decode`).
            InstrumentError: after the retries documented in :mod:`.modbus_line`.
        """
        reg = EUROTHERM_REGISTERS[name]
        (raw,) = self.line.read_words(reg, 1)
        return decode(reg, raw, self.decimals)

    def write(self, name: str, value: float) -> float:
        """Write ``value`` (wire unit) to register ``name``; sent once, never retried.

        The raw integer is computed by :func:`synthgap.hardware.registers.encode` (rounded
        toward the safe side) and written with 0 decimals, so minimalmodbus does no scaling.

        Returns:
            the value that went on the wire, in the wire unit (journal this one).

        Raises:
            ValueError: register read-only, value not finite or not representable, or a
                non-zero rate that would go out as 0 (no limit).
        """
        reg = EUROTHERM_REGISTERS[name]
        if not reg.writable:
            raise ValueError(f"register {reg.name} ({reg.address}) is read-only")
        raw = encode(reg, value, self.decimals)
        sent = decode(reg, raw, self.decimals)
        log.info("write %s (reg %d) = %s %s (raw 0x%04X)", reg.name, reg.address, sent, reg.unit, raw)
        self.line.write_word(reg, raw)
        return sent

    def quantize(self, prop: str, value: float) -> float:
        """What ``controller.<prop> = value`` would put on the wire, in API units (K,
        K/min), without sending anything; ``ValueError`` if it would be refused."""
        name, offset = _API_REGISTERS[prop]
        reg = EUROTHERM_REGISTERS[name]
        return decode(reg, encode(reg, self._to_wire(prop, value), self.decimals),
                      self.decimals) + offset

    def _to_wire(self, prop: str, value: float) -> float:
        if prop == "ramp_rate":
            try:
                ok = math.isfinite(value) and value >= 0
            except (TypeError, OverflowError):
                ok = False
            if not ok:
                raise ValueError(f"ramp_rate {short(value, 20)} K/min must be finite and >= 0")
            return float(value)
        return _kelvin_to_celsius(value, prop)

    def _set(self, prop: str, value: float) -> None:
        name, offset = _API_REGISTERS[prop]
        self.last_sent[prop] = self.write(name, self._to_wire(prop, value)) + offset

    # -- public API in K -----------------------------------------------------------------
    @property
    def temperature(self) -> float:
        """Measured thermocouple temperature (process value), K.

        Two transactions: the block [process value, target setpoint] and (with
        ``check_status``) the status word.

        Raises:
            ImplausibleReading: the no-value code, a value outside the valid range, or the
                status word's sensor-break / PV-out-of-range bit set.
        """
        pv_reg = EUROTHERM_REGISTERS["process_value"]
        raw = self.line.read_words(pv_reg, 2)[0]
        value = decode(pv_reg, raw, self.decimals)
        if self.check_status:
            status = int(self.read("status_word"))
            reason = temperature_refusal(status)
            if reason is not None:
                raise ImplausibleReading("process_value", f"0x{raw:04X}",
                                         f"{reason} (status 0x{status:04X})")
        return value + ZERO_CELSIUS_K

    @property
    def setpoint(self) -> float:
        """Target setpoint, K. Setting it raises ``ValueError`` if not finite, below 0 K or
        not representable; the value sent is rounded down (``last_sent["setpoint"]``)."""
        return self.read("target_setpoint") + ZERO_CELSIUS_K

    @setpoint.setter
    def setpoint(self, value: float) -> None:
        self._set("setpoint", value)

    @property
    def working_setpoint(self) -> float:
        """Setpoint currently regulated to (ramping toward the target), K."""
        return self.read("working_setpoint") + ZERO_CELSIUS_K

    @property
    def output_power(self) -> float:
        """Heater output power, % (-100..100)."""
        return self.read("output_power")

    @property
    def ramp_rate(self) -> float:
        """Setpoint rate limit, K/min (== degC/min); 0 means no limit. Must be >= 0; a
        non-zero rate below one resolution step (0.1 at 1 decimal) is refused, others are
        rounded down (``last_sent["ramp_rate"]``)."""
        return self.read("setpoint_rate_limit")

    @ramp_rate.setter
    def ramp_rate(self, value: float) -> None:
        self._set("ramp_rate", value)

    @property
    def setpoint_high_limit(self) -> float:
        """Highest setpoint the controller accepts, K."""
        return self.read("setpoint_high_limit") + ZERO_CELSIUS_K

    @setpoint_high_limit.setter
    def setpoint_high_limit(self, value: float) -> None:
        self._set("setpoint_high_limit", value)

    @property
    def setpoint_low_limit(self) -> float:
        """Lowest setpoint the controller accepts, K."""
        return self.read("setpoint_low_limit") + ZERO_CELSIUS_K

    @setpoint_low_limit.setter
    def setpoint_low_limit(self, value: float) -> None:
        self._set("setpoint_low_limit", value)

    @property
    def status_word(self) -> int:
        """Fast status bit field (register 75), raw 16-bit integer."""
        return int(self.read("status_word"))

    @property
    def programme_status(self) -> int:
        """Programmer state (register 23): 1 reset, 2 run, 4 hold, 8 holdback, 16 complete."""
        return int(self.read("programme_status"))


def _kelvin_to_celsius(value_K: float, what: str) -> float:
    try:
        value_K = float(value_K)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{what} {short(value_K, 20)} K is not a finite number") from None
    if not math.isfinite(value_K):
        raise ValueError(f"{what} {value_K!r} K is not a finite number")
    if value_K < 0:
        raise ValueError(f"{what} {value_K!r} K is below absolute zero")
    return value_K - ZERO_CELSIUS_K
