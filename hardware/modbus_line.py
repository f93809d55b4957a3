"""One Modbus RTU line to one slave: line discipline, reply checks, exception codes, retries.

Modbus RTU has no transaction id, so a late reply to one request looks exactly like the
reply to the next one. :class:`ModbusLine` keeps the discipline that prevents it, for any
register-map driver over an injected pyserial-like port (times in s):

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
  class and lets code 5 through as a wrong function code).

Retry policy: only reads are retried (bounded, exponential backoff), after a timeout, a
corrupt reply, exception 6 (busy) or 11 (gateway target did not respond). Writes are sent
once so a lost reply never repeats a state change. Exception 5 (ACKNOWLEDGE: accepted,
still processing) raises :class:`~synthgap.hardware.errors.ModbusAcknowledge` and is never
repeated: the outcome is unknown until read back. See :data:`MODBUS_EXCEPTIONS`.

What the registers mean and how they scale is the driver's and :mod:`.registers`' business.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import minimalmodbus

from .errors import (
    ChecksumError,
    ConnectionLost,
    InstrumentError,
    InstrumentTimeout,
    ModbusAcknowledge,
    ModbusExceptionReply,
    ProtocolError,
)
from .lineio import PORT_ERRORS as _PORT_ERRORS
from .registers import Register, crc16

__all__ = ["DEFAULT_TIMEOUT_S", "MODBUS_EXCEPTIONS", "ModbusLine", "check_slave"]

log = logging.getLogger(__name__)

READ_FUNCTION = 3  # read holding registers
WRITE_FUNCTION = 6  # write single register
EXCEPTION_FLAG = 0x80  # set in the function code of an exception reply
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

def check_slave(slave: int) -> None:
    """Refuse a Modbus slave address outside 1-247 (``ValueError`` quoting it)."""
    if isinstance(slave, bool) or not (isinstance(slave, int) and 1 <= slave <= 247):
        raise ValueError(f"slave address {str(slave)[:20]!r} not in 1..247")


class ModbusLine:
    """The line discipline of one Modbus RTU slave on an injected pyserial-like port.

    Args:
        port: an open pyserial port or any object with ``read/write/in_waiting/timeout``.
        slave: Modbus slave address, 1-247.
        timeout_s: read timeout per attempt, s (written to ``port.timeout``).
        retries: extra attempts for reads after a timeout / corrupt reply / busy, 0-10.
        backoff_s: delay before the first retry, s; doubles each retry.
        turnaround_s: line silence that ends a drain, s (default
            ``max(MIN_TURNAROUND_S, TURNAROUND_PER_TIMEOUT * timeout_s)``); must exceed the
            latest a slave may still answer after ``timeout_s``.
        drain_max_s: longest drain before giving up with ``ProtocolError``, s (default
            ``DRAIN_BOUND_FACTOR * turnaround_s``).
        clock: monotonic clock, s; sleep: sleep function (both injectable for tests).
        logger: where line events go (default this module's); a driver passes its own, so
            they are logged under the instrument's name.
    """

    def __init__(self, port: Any, slave: int = 1, timeout_s: float = DEFAULT_TIMEOUT_S,
                 retries: int = 2, backoff_s: float = 0.02, turnaround_s: float | None = None,
                 drain_max_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 logger: logging.Logger | None = None) -> None:
        check_slave(slave)
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
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.turnaround_s = turnaround_s
        self.drain_max_s = drain_max_s
        self.log = logger or log
        self._clock = clock
        self._sleep = sleep
        self._dirty = False  # the line may carry a stale frame: drain before the next request
        port.timeout = timeout_s
        self._recorder = _RecordingPort(port)
        # minimalmodbus 2.x accepts a serial object directly and keeps it open.
        self._instrument = minimalmodbus.Instrument(self._recorder, slave, close_port_after_each_call=False)
        self._instrument.clear_buffers_before_each_transaction = True

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
            self.log.warning("%d unexpected byte(s) on the idle line before %s", waiting, reg.name)
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
            self.log.warning("discarded %d stale byte(s) before %s", discarded, reg.name)

    def _translate(self, exc: BaseException, reg: Register, function: int) -> InstrumentError:
        """Map a minimalmodbus / pyserial error to this package's typed errors; the
        exception code is read from the reply frame itself."""
        text = str(exc)
        if isinstance(exc, minimalmodbus.ModbusException):
            reply = self._recorder.last_reply
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
        except BaseException:  # a signal mid-transaction: its reply may still arrive
            self._dirty = True
            raise
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

    def read_words(self, reg: Register, count: int = 1) -> list[int]:
        """Read ``count`` raw words from ``reg.address`` on (function 3), retrying as documented.

        Raises:
            InstrumentError: after the retries (none for a line that will not go quiet).
        """
        attempt = 0
        while True:
            self._settle(reg)  # a line that will not go quiet is not retried
            try:
                words = self._transact(reg, READ_FUNCTION, lambda: self._instrument.read_registers(
                    reg.address, count, READ_FUNCTION))
                self.log.debug("read %s (reg %d, %d word(s)) = %s", reg.name, reg.address, count, words)
                return list(words)
            except InstrumentError as err:
                if not self._retryable(err) or attempt >= self.retries:
                    self.log.warning("read %s failed after %d attempt(s): %s", reg.name, attempt + 1, err)
                    raise
                delay = self.backoff_s * 2**attempt
                self.log.info("read %s: %s; retry %d in %.3f s", reg.name, err, attempt + 1, delay)
                self._sleep(delay)
                attempt += 1

    def write_word(self, reg: Register, raw: int) -> None:
        """Write the raw word ``raw`` to ``reg.address`` (function 6); sent once, never retried.

        Raises:
            InstrumentError: no trusted echo (the outcome is then unknown until read back).
        """
        self._settle(reg)
        self._transact(reg, WRITE_FUNCTION, lambda: self._instrument.write_register(
            reg.address, raw, 0, WRITE_FUNCTION, False))
