"""Typed exceptions raised by the instrument drivers, emulators and the safety shield.

Every driver failure is an :class:`InstrumentError`; callers that only want to know
"the instrument did not do it" catch that one class. The subclasses say why.
:class:`ConfigError` (a malformed lab file) is the project's one configuration error,
defined in :mod:`synthgap.envs.userfiles` and re-exported here.
"""

from __future__ import annotations

from synthgap.envs.userfiles import ConfigError, short

__all__ = [
    "BalanceBusy",
    "BalanceError",
    "BalanceLogicalError",
    "BalanceOverload",
    "BalanceSyntaxError",
    "BalanceTransmissionError",
    "BalanceUnderload",
    "ChecksumError",
    "ConfigError",
    "ConnectionLost",
    "ImplausibleReading",
    "InstrumentError",
    "InstrumentTimeout",
    "ModbusAcknowledge",
    "ModbusExceptionReply",
    "ProtocolError",
    "SafetyViolation",
    "StationError",
]


class InstrumentError(Exception):
    """Base class of every error raised by a driver."""


class InstrumentTimeout(InstrumentError):
    """The instrument sent no (complete) reply within the timeout."""


class ConnectionLost(InstrumentError):
    """The port went away (cable pulled, pty closed, socket reset)."""


class ProtocolError(InstrumentError):
    """The reply was received but is not a valid reply to the command sent."""


class ChecksumError(ProtocolError):
    """The reply frame failed its CRC / checksum."""


class ImplausibleReading(InstrumentError):
    """A reading arrived but cannot be believed: outside what the sensor can report,
    NaN, the sensor-break code or a status bit that says the sensor is broken.

    An unknown temperature is a dangerous temperature: every interlock treats this
    error as "hot".

    Attributes:
        quantity: what was read (register or reading name).
        raw: the raw value as received (wire integer, float or text).
    """

    def __init__(self, quantity: str, raw: object, reason: str) -> None:
        super().__init__(f"{quantity}: implausible reading {short(raw, 40)}: {reason}")
        self.quantity = quantity
        self.raw = raw
        self.reason = reason


class ModbusExceptionReply(InstrumentError):
    """The Modbus slave answered with an exception reply.

    Attributes:
        code: Modbus exception code (1 illegal function, 2 illegal data address,
            3 illegal data value, 4 slave device failure, 6 busy, ...).
        register: the register address involved, if known.
    """

    def __init__(self, code: int, message: str, register: int | None = None) -> None:
        super().__init__(f"Modbus exception {code}: {message}"
                         + (f" (register {register})" if register is not None else ""))
        self.code = code
        self.register = register


class ModbusAcknowledge(ModbusExceptionReply):
    """Exception code 5 (ACKNOWLEDGE): the slave accepted the request but has not finished
    it. Not a failure to retry blindly: a write may still take effect, so the register's
    state is unknown until it is read back; the driver never repeats the request."""


class BalanceError(InstrumentError):
    """Base class of the MT-SICS error replies."""


class BalanceSyntaxError(BalanceError):
    """``ES``: the balance did not recognise the command."""


class BalanceTransmissionError(BalanceError):
    """``ET``: the balance received a corrupted command (parity, framing, overrun)."""


class BalanceLogicalError(BalanceError):
    """``EL``: the command is valid but cannot be executed (e.g. wrong parameter)."""


class BalanceBusy(BalanceError):
    """``<cmd> I``: command understood but not executable now (balance busy)."""


class BalanceOverload(BalanceError):
    """``<cmd> +``: the load is above the weighing range."""


class BalanceUnderload(BalanceError):
    """``<cmd> -``: the load is below the weighing range (pan missing?)."""


class StationError(InstrumentError):
    """A line-protocol station answered ``ERR <code> <text>``.

    Attributes:
        code: the station's integer error code.
        text: the station's free-text explanation.
    """

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"station error {code}: {text}")
        self.code = code
        self.text = text


class SafetyViolation(Exception):
    """A command was refused by the safety shield before reaching any driver.

    Attributes:
        command: name of the refused command.
        value: the offending value (in the API unit).
        limit: the limit it violated (same unit), or ``None`` for non-numeric refusals.
    """

    def __init__(self, command: str, value: object, limit: object, reason: str) -> None:
        super().__init__(f"{command} refused: {reason} (value={short(value)}, limit={short(limit)})")
        self.command = command
        self.value = value
        self.limit = limit
        self.reason = reason
