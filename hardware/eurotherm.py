"""Eurotherm 2000/3200-series furnace controller over Modbus RTU (minimalmodbus framing).

Units: the controller speaks degC on the wire; this driver's API speaks K. The
conversion (``K = degC + 273.15``; rates are equal in K/min and degC/min) happens only
here, at the driver edge. Validators are strict: they raise, never clamp.

Only reads are retried (bounded, with exponential backoff); writes are sent once so a
lost reply never causes a repeated state change.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import minimalmodbus
import serial

from .errors import (
    ChecksumError,
    ConnectionLost,
    InstrumentError,
    InstrumentTimeout,
    ModbusExceptionReply,
    ProtocolError,
)
from .lineio import PORT_ERRORS as _PORT_ERRORS
from .registers import EUROTHERM_REGISTERS, Register

__all__ = ["ZERO_CELSIUS_K", "EurothermController"]

log = logging.getLogger(__name__)

ZERO_CELSIUS_K = 273.15  # K at 0 degC
READ_FUNCTION = 3  # read holding registers
WRITE_FUNCTION = 6  # write single register
DEFAULT_BAUDRATE = 19200  # baud, Eurotherm factory default
DEFAULT_TIMEOUT_S = 0.2  # s per read attempt

_SLAVE_MESSAGES = {
    "illegal function": 1,
    "illegal data address": 2,
    "illegal data value": 3,
    "device failure": 4,
    "device busy": 6,
    "negative acknowledge": 7,
    "memory parity": 8,
}


def _translate(exc: BaseException, reg: Register) -> InstrumentError:
    """Map minimalmodbus / pyserial errors to this package's typed errors."""
    text = str(exc)
    if isinstance(exc, minimalmodbus.SlaveReportedException):
        code = next((c for k, c in _SLAVE_MESSAGES.items() if k in text), 4)
        return ModbusExceptionReply(code, text, reg.address)
    if isinstance(exc, minimalmodbus.NoResponseError):
        return InstrumentTimeout(f"no reply reading/writing {reg.name}: {text}")
    if isinstance(exc, minimalmodbus.InvalidResponseError):
        if "CRC" in text or "checksum" in text.lower():
            return ChecksumError(f"{reg.name}: {text}")
        return ProtocolError(f"{reg.name}: {text}")
    if isinstance(exc, _PORT_ERRORS):
        return ConnectionLost(f"{reg.name}: port lost: {text}")
    return ProtocolError(f"{reg.name}: {type(exc).__name__}: {text}")


class EurothermController:
    """One Eurotherm controller on an injected pyserial-like port.

    Args:
        port: an open pyserial port (``serial.serial_for_url(url)``) or any object with
            ``open/close/read/write/is_open`` (e.g. ``hardware.testing.ScriptedPort``).
        slave: Modbus slave address, 1-247.
        decimals: configured temperature resolution (decimal places on the wire), 0-2.
        timeout_s: read timeout per attempt, s (written to ``port.timeout``).
        retries: extra attempts for reads after a timeout / corrupt reply.
        backoff_s: delay before the first retry, s; doubles each retry.
    """

    def __init__(self, port: Any, slave: int = 1, decimals: int = 1,
                 timeout_s: float = DEFAULT_TIMEOUT_S, retries: int = 2,
                 backoff_s: float = 0.02) -> None:
        if not (isinstance(slave, int) and 1 <= slave <= 247):
            raise ValueError(f"slave address {slave!r} not in 1..247")
        if decimals not in (0, 1, 2):
            raise ValueError(f"decimals {decimals!r} not in (0, 1, 2)")
        if not (isinstance(retries, int) and 0 <= retries <= 10):
            raise ValueError(f"retries {retries!r} not in 0..10")
        if not (timeout_s > 0 and backoff_s >= 0):
            raise ValueError("timeout_s must be > 0 and backoff_s >= 0")
        self.port = port
        self.slave = slave
        self.decimals = decimals
        self.retries = retries
        self.backoff_s = backoff_s
        port.timeout = timeout_s
        # minimalmodbus 2.x accepts a serial object directly and keeps it open.
        self._inst = minimalmodbus.Instrument(port, slave, close_port_after_each_call=False)
        self._inst.clear_buffers_before_each_transaction = True

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
    def _decimals(self, reg: Register) -> int:
        return self.decimals if reg.decimals is None else reg.decimals

    def read(self, name: str) -> float:
        """Read register ``name`` in its wire unit (degC, degC/min, %, raw int).

        Retries timeouts and corrupt replies up to ``retries`` times (reads are
        idempotent); exception replies and a lost port are raised at once.
        """
        reg = EUROTHERM_REGISTERS[name]
        attempt = 0
        while True:
            try:
                value = self._inst.read_register(
                    reg.address, self._decimals(reg), READ_FUNCTION, reg.signed)
                log.debug("read %s (reg %d) = %s %s", reg.name, reg.address, value, reg.unit)
                return float(value)
            except _PORT_ERRORS as exc:  # ModbusException and SerialException are OSErrors
                err = _translate(exc, reg)
                retryable = isinstance(err, InstrumentTimeout | ProtocolError)
                if not retryable or attempt >= self.retries:
                    log.warning("read %s failed after %d attempt(s): %s",
                                reg.name, attempt + 1, err)
                    raise err from exc
                delay = self.backoff_s * 2**attempt
                log.info("read %s: %s; retry %d in %.3f s", reg.name, err, attempt + 1, delay)
                time.sleep(delay)
                attempt += 1

    def write(self, name: str, value: float) -> None:
        """Write ``value`` (wire unit) to register ``name``; sent once, never retried.

        Raises:
            ValueError: register read-only, value not finite or not representable.
        """
        reg = EUROTHERM_REGISTERS[name]
        if not reg.writable:
            raise ValueError(f"register {reg.name} ({reg.address}) is read-only")
        dec = self._decimals(reg)
        if not math.isfinite(value):
            raise ValueError(f"{reg.name}: value {value!r} is not finite")
        raw = round(value * 10**dec)
        lo, hi = (-32768, 32767) if reg.signed else (0, 65535)
        if not lo <= raw <= hi:
            raise ValueError(
                f"{reg.name}: {value} {reg.unit} not representable with {dec} decimals "
                f"(range {lo / 10**dec} .. {hi / 10**dec})")
        log.info("write %s (reg %d) = %s %s", reg.name, reg.address, value, reg.unit)
        try:
            self._inst.write_register(reg.address, value, dec, WRITE_FUNCTION, reg.signed)
        except _PORT_ERRORS as exc:  # ModbusException and SerialException are OSErrors
            raise _translate(exc, reg) from exc

    # -- public API in K -----------------------------------------------------------------
    @property
    def temperature(self) -> float:
        """Measured thermocouple temperature (process value), K."""
        return self.read("process_value") + ZERO_CELSIUS_K

    @property
    def setpoint(self) -> float:
        """Target setpoint, K. Setting it raises ``ValueError`` if not finite or below 0 K."""
        return self.read("target_setpoint") + ZERO_CELSIUS_K

    @setpoint.setter
    def setpoint(self, value: float) -> None:
        self.write("target_setpoint", _kelvin_to_celsius(value, "setpoint"))

    @property
    def working_setpoint(self) -> float:
        """Setpoint currently regulated to (ramping toward the target), K."""
        return self.read("working_setpoint") + ZERO_CELSIUS_K

    @property
    def output_power(self) -> float:
        """Heater output power, % (0-100)."""
        return self.read("output_power")

    @property
    def ramp_rate(self) -> float:
        """Setpoint rate limit, K/min (== degC/min); 0 means no limit. Must be >= 0."""
        return self.read("setpoint_rate_limit")

    @ramp_rate.setter
    def ramp_rate(self, value: float) -> None:
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"ramp_rate {value!r} K/min must be finite and >= 0")
        self.write("setpoint_rate_limit", value)

    @property
    def setpoint_high_limit(self) -> float:
        """Highest setpoint the controller accepts, K."""
        return self.read("setpoint_high_limit") + ZERO_CELSIUS_K

    @setpoint_high_limit.setter
    def setpoint_high_limit(self, value: float) -> None:
        self.write("setpoint_high_limit", _kelvin_to_celsius(value, "setpoint_high_limit"))

    @property
    def setpoint_low_limit(self) -> float:
        """Lowest setpoint the controller accepts, K."""
        return self.read("setpoint_low_limit") + ZERO_CELSIUS_K

    @setpoint_low_limit.setter
    def setpoint_low_limit(self, value: float) -> None:
        self.write("setpoint_low_limit", _kelvin_to_celsius(value, "setpoint_low_limit"))

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
    except (TypeError, ValueError):
        raise ValueError(f"{what} {value_K!r} K is not a number") from None
    if not math.isfinite(value_K):
        raise ValueError(f"{what} {value_K!r} K is not a finite number")
    if value_K < 0:
        raise ValueError(f"{what} {value_K!r} K is below absolute zero")
    return value_K - ZERO_CELSIUS_K
