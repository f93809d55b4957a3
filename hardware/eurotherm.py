"""Eurotherm 2000/3200-series furnace controller over Modbus RTU (minimalmodbus framing).

Units: the controller speaks degC on the wire; this driver's API speaks K. The
conversion (``K = degC + 273.15``; rates are equal in K/min and degC/min) happens only
here, at the driver edge; scaling to and from wire integers happens only in
:mod:`synthgap.hardware.registers`. Validators are strict: they raise, never clamp.

Line discipline (Modbus RTU has no transaction id, so a late reply to one request looks
exactly like the reply to the next one):

- before each request the input buffer is cleared (minimalmodbus does it, and keeps the
  3.5-character silence between frames);
- after a timeout, a corrupt or unexpected reply, or bytes found on an idle line, the line
  is *drained*: read and discarded until it has been quiet for ``turnaround_s`` (default
  ``max(1.0 s, 5 * timeout_s)``: with the 0.2 s default timeout, replies up to 1.2 s after
  their request are caught, against 0.7 s late in the field trial), bounded by
  ``drain_max_s`` (then ``ProtocolError``: a babbling line, not retried). A healthy line
  never pays for it: the drain runs only after a fault;
- a reply is believed only if its CRC, slave address, function code and byte count (reads)
  or echoed address and value (writes) match the request (minimalmodbus 2.1 checks these)
  and no further byte follows it (checked here: two frames on the line mean one is stale);
  exception codes are read from the reply frame (minimalmodbus maps 10 and 11 to one
  class and lets code 5 through as a wrong function code);
- the temperature is read as the block [process value, target setpoint] (4 data bytes;
  Eurotherm 2000/3200 controllers answer a block read of parameters 1-2), so no stale
  single-register reply can pass for it, and then the status word: the sensor-break and
  PV-out-of-range bits make it raise ``ImplausibleReading``. That is one more transaction
  per temperature, every time, since a broken thermocouple must never read as a value:
  about 10 ms more at 19200 baud on a real line; on a pty with the emulator a temperature
  measured 9.4 ms against 4.6 ms for a single-register read.

Retry policy: only reads are retried (bounded, exponential backoff), after a timeout, a
corrupt reply, exception 6 (busy) or 11 (gateway target did not respond). Writes are sent
once so a lost reply never repeats a state change. Exception 5 (ACKNOWLEDGE: accepted,
still processing) raises :class:`~synthgap.hardware.errors.ModbusAcknowledge` and is never
repeated: the outcome is unknown until read back. See :data:`MODBUS_EXCEPTIONS`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import minimalmodbus
import serial

from synthgap.envs.userfiles import short

from .errors import (
    ChecksumError,
    ConnectionLost,
    ImplausibleReading,
    InstrumentError,
    InstrumentTimeout,
    ModbusAcknowledge,
    ModbusExceptionReply,
    ProtocolError,
)
from .lineio import PORT_ERRORS as _PORT_ERRORS
from .registers import (
    EUROTHERM_REGISTERS,
    Register,
    crc16,
    decode,
    encode,
    temperature_refusal,
)

__all__ = ["MODBUS_EXCEPTIONS", "ZERO_CELSIUS_K", "EurothermController"]

log = logging.getLogger(__name__)

ZERO_CELSIUS_K = 273.15  # K at 0 degC
READ_FUNCTION = 3  # read holding registers
WRITE_FUNCTION = 6  # write single register
EXCEPTION_FLAG = 0x80  # set in the function code of an exception reply
DEFAULT_BAUDRATE = 19200  # baud, Eurotherm factory default
DEFAULT_TIMEOUT_S = 0.2  # s per read attempt
MIN_TURNAROUND_S = 1.0  # s of line silence that ends a drain, at least
TURNAROUND_PER_TIMEOUT = 5.0  # default turnaround_s = max(MIN_TURNAROUND_S, this * timeout_s)
DRAIN_BOUND_FACTOR = 4.0  # default drain_max_s = this * turnaround_s
DRAIN_POLL_S = 0.02  # s, read slice while draining

MODBUS_EXCEPTIONS: dict[int, tuple[str, bool]] = {
    1: ("illegal function", False),
    2: ("illegal data address", False),
    3: ("illegal data value", False),
    4: ("slave device failure", False),
    5: ("acknowledge: accepted, still processing; outcome unknown until read back", False),
    6: ("slave device busy", True),
    7: ("negative acknowledge: cannot perform the program function", False),
    8: ("memory parity error", False),
    10: ("gateway path unavailable", False),
    11: ("gateway target device failed to respond", True),
}
"""Modbus exception code -> (meaning, whether a *read* is retried). Writes never are."""

_MINIMALMODBUS_TEXTS = {  # fallback when the raw reply is not at hand; minimalmodbus 2.1 texts
    "illegal function": 1, "illegal data address": 2, "illegal data value": 3,
    "device failure": 4, "device busy": 6, "negative acknowledge": 7, "memory parity": 8,
    "gateway path unavailable": 10, "gateway target device failed": 11,
}

_API_REGISTERS: dict[str, tuple[str, float]] = {  # writable property -> (register, offset)
    "setpoint": ("target_setpoint", ZERO_CELSIUS_K),
    "ramp_rate": ("setpoint_rate_limit", 0.0),
    "setpoint_high_limit": ("setpoint_high_limit", ZERO_CELSIUS_K),
    "setpoint_low_limit": ("setpoint_low_limit", ZERO_CELSIUS_K),
}


class _RecordingPort:
    """The port as minimalmodbus sees it; keeps the raw bytes of the latest reply so that
    exception codes are read from the frame, not guessed from message texts."""

    def __init__(self, port: Any) -> None:
        object.__setattr__(self, "_port", port)
        object.__setattr__(self, "last_reply", b"")

    def write(self, data: bytes) -> int:
        object.__setattr__(self, "last_reply", b"")
        return self._port.write(data)

    def read(self, size: int = 1) -> bytes:
        data = self._port.read(size)
        object.__setattr__(self, "last_reply", self.last_reply + bytes(data))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._port, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._port, name, value)


def _exception_error(code: int, reg: Register) -> ModbusExceptionReply:
    meaning = MODBUS_EXCEPTIONS.get(code, ("unknown exception code", False))[0]
    cls = ModbusAcknowledge if code == 5 else ModbusExceptionReply
    return cls(code, f"{meaning} ({reg.name})", reg.address)


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
        last_sent: writable property name -> the value that last went on the wire, in API
            units (K, K/min): what a journal must record.
    """

    def __init__(self, port: Any, slave: int = 1, decimals: int = 1,
                 timeout_s: float = DEFAULT_TIMEOUT_S, retries: int = 2,
                 backoff_s: float = 0.02, turnaround_s: float | None = None,
                 drain_max_s: float | None = None, check_status: bool = True,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if isinstance(slave, bool) or not (isinstance(slave, int) and 1 <= slave <= 247):
            raise ValueError(f"slave address {str(slave)[:20]!r} not in 1..247")
        if decimals not in (0, 1, 2) or isinstance(decimals, bool):
            raise ValueError(f"decimals {str(decimals)[:20]!r} not in (0, 1, 2)")
        if isinstance(retries, bool) or not (isinstance(retries, int) and 0 <= retries <= 10):
            raise ValueError(f"retries {str(retries)[:20]!r} not in 0..10")
        if not (0 < timeout_s < math.inf and 0 <= backoff_s < math.inf):
            raise ValueError("timeout_s must be finite and > 0, backoff_s finite and >= 0")
        if turnaround_s is None:
            turnaround_s = max(MIN_TURNAROUND_S, TURNAROUND_PER_TIMEOUT * timeout_s)
        if drain_max_s is None:
            drain_max_s = DRAIN_BOUND_FACTOR * turnaround_s
        if not (0 < turnaround_s <= drain_max_s < math.inf):
            raise ValueError(f"need 0 < turnaround_s ({turnaround_s!r}) <= drain_max_s "
                             f"({drain_max_s!r}) < inf")
        self.port = port
        self.slave = slave
        self.decimals = decimals
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.turnaround_s = turnaround_s
        self.drain_max_s = drain_max_s
        self.check_status = check_status
        self.last_sent: dict[str, float] = {}
        self._clock = clock
        self._sleep = sleep
        self._dirty = False  # the line may carry a stale frame: drain before the next request
        port.timeout = timeout_s
        self._line = _RecordingPort(port)
        # minimalmodbus 2.x accepts a serial object directly and keeps it open.
        self._inst = minimalmodbus.Instrument(self._line, slave, close_port_after_each_call=False)
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

    # -- line discipline -----------------------------------------------------------------
    def _waiting(self, what: str) -> int:
        try:
            return int(self.port.in_waiting)
        except _PORT_ERRORS as exc:
            raise ConnectionLost(f"{what}: port lost: {exc}") from exc

    def _settle(self, reg: Register) -> None:
        """Drain the line first if it may carry a stale frame (after a fault, or bytes
        that arrived while it was idle)."""
        if not self._dirty:
            waiting = self._waiting(reg.name)
            if not waiting:
                return
            log.warning("%d unexpected byte(s) on the idle line before %s", waiting, reg.name)
        self._drain(reg)

    def _drain(self, reg: Register) -> None:
        """Discard input until the line was quiet for ``turnaround_s``.

        Raises:
            ProtocolError: still not quiet after ``drain_max_s``.
            ConnectionLost: the port failed.
        """
        start = quiet_since = self._clock()
        discarded = 0
        saved = self.port.timeout
        try:
            self.port.timeout = min(DRAIN_POLL_S, self.turnaround_s)
            while True:
                now = self._clock()
                if now - quiet_since >= self.turnaround_s:
                    break
                if now - start >= self.drain_max_s:
                    raise ProtocolError(
                        f"{reg.name}: line not quiet for {self.turnaround_s:g} s within "
                        f"{self.drain_max_s:g} s ({discarded} bytes discarded): a babbling device?")
                chunk = self.port.read(max(1, self._waiting(reg.name)))
                if chunk:
                    discarded += len(chunk)
                    quiet_since = self._clock()
                elif self._clock() - now < DRAIN_POLL_S / 2:  # a port that does not block
                    self._sleep(DRAIN_POLL_S)
        except _PORT_ERRORS as exc:
            raise ConnectionLost(f"{reg.name}: port lost while draining: {exc}") from exc
        finally:
            try:
                self.port.timeout = saved
            except _PORT_ERRORS:
                pass  # the port is gone; the error above says so
        self._dirty = False
        if discarded:
            log.warning("discarded %d stale byte(s) before %s", discarded, reg.name)

    def _translate(self, exc: BaseException, reg: Register, function: int) -> InstrumentError:
        """Map a minimalmodbus / pyserial error to this package's typed errors; the
        exception code is read from the reply frame itself."""
        text = str(exc)
        if isinstance(exc, minimalmodbus.ModbusException):
            reply = self._line.last_reply
            if (len(reply) >= 5 and reply[0] == self.slave
                    and reply[1] == function | EXCEPTION_FLAG and crc16(reply[:3]) == reply[3:5]):
                return _exception_error(reply[2], reg)
            if isinstance(exc, minimalmodbus.SlaveReportedException):
                code = next((c for k, c in _MINIMALMODBUS_TEXTS.items() if k in text.lower()), 0)
                return _exception_error(code, reg)
            if isinstance(exc, minimalmodbus.NoResponseError):
                return InstrumentTimeout(f"no reply to {reg.name} within {self.timeout_s:g} s")
            if "checksum" in text.lower() or "crc" in text.lower():
                return ChecksumError(f"{reg.name}: {text[:200]}")
            return ProtocolError(f"{reg.name}: {text[:200]}")
        if isinstance(exc, _PORT_ERRORS):
            return ConnectionLost(f"{reg.name}: port lost: {text[:200]}")
        return ProtocolError(f"{reg.name}: {type(exc).__name__}: {text[:200]}")

    def _transact(self, reg: Register, function: int, call: Callable[[], Any]) -> Any:
        """One request/reply (call :meth:`_settle` first); marks the line dirty on any doubt."""
        try:
            result = call()
        except _PORT_ERRORS as exc:  # ModbusException and SerialException are OSErrors
            err = self._translate(exc, reg, function)
            if isinstance(err, InstrumentTimeout | ProtocolError):
                self._dirty = True
            raise err from exc
        extra = self._waiting(reg.name)
        if extra:
            self._dirty = True
            raise ProtocolError(f"{reg.name}: {extra} byte(s) followed the reply: two frames "
                                "on the line, the reply is not trusted")
        return result

    def _retryable(self, err: InstrumentError) -> bool:
        if isinstance(err, ModbusExceptionReply):
            return MODBUS_EXCEPTIONS.get(err.code, ("", False))[1]
        return isinstance(err, InstrumentTimeout | ProtocolError)

    def _read_words(self, reg: Register, count: int = 1) -> list[int]:
        """Read ``count`` raw words from ``reg.address`` on, retrying as documented."""
        attempt = 0
        while True:
            self._settle(reg)  # a line that will not go quiet is not retried
            try:
                words = self._transact(reg, READ_FUNCTION, lambda: self._inst.read_registers(
                    reg.address, count, READ_FUNCTION))
                log.debug("read %s (reg %d, %d word(s)) = %s", reg.name, reg.address, count, words)
                return list(words)
            except InstrumentError as err:
                if not self._retryable(err) or attempt >= self.retries:
                    log.warning("read %s failed after %d attempt(s): %s", reg.name, attempt + 1, err)
                    raise
                delay = self.backoff_s * 2**attempt
                log.info("read %s: %s; retry %d in %.3f s", reg.name, err, attempt + 1, delay)
                self._sleep(delay)
                attempt += 1

    # -- raw register access ---------------------------------------------------------
    def read(self, name: str) -> float:
        """Read register ``name`` in its wire unit (degC, degC/min, %, raw int).

        Raises:
            ImplausibleReading: the no-value code or a value outside the register's
                valid range (see :func:`synthgap.hardware.registers.decode`).
            InstrumentError: after the retries documented in the module docstring.
        """
        reg = EUROTHERM_REGISTERS[name]
        (raw,) = self._read_words(reg, 1)
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
        self._settle(reg)
        self._transact(reg, WRITE_FUNCTION, lambda: self._inst.write_register(
            reg.address, raw, 0, WRITE_FUNCTION, False))
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
        raw = self._read_words(pv_reg, 2)[0]
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

