"""Mettler Toledo balance over MT-SICS (level 0/1), CR LF terminated ASCII.

Commands used: ``S`` (stable weight), ``SI`` (weight immediately), ``Z`` (zero),
``T`` (tare), ``@`` (reset; replies with the serial number ``I4 A "..."``).
Weight replies look like ``S S      12.3456 g`` (``S D`` = dynamic, from ``SI`` only).
Error replies map to exceptions in :mod:`synthgap.hardware.errors`:

========  ===============================  ===========================
reply     meaning                          exception
========  ===============================  ===========================
``ES``    syntax error                     ``BalanceSyntaxError``
``ET``    transmission error               ``BalanceTransmissionError``
``EL``    logical error                    ``BalanceLogicalError``
``S I``   not executable (busy)            ``BalanceBusy``
``S +``   overload                         ``BalanceOverload``
``S -``   underload                        ``BalanceUnderload``
========  ===============================  ===========================

(``Z``/``T`` replies use their own command letter: ``Z I``, ``T +``, ...). Masses are g;
replies in mg or kg are converted. Only ``S``/``SI`` are retried (idempotent).
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import serial

from .errors import (
    BalanceBusy,
    BalanceLogicalError,
    BalanceOverload,
    BalanceSyntaxError,
    BalanceTransmissionError,
    BalanceUnderload,
    InstrumentError,
    InstrumentTimeout,
    ProtocolError,
)
from .lineio import LineTransport

__all__ = ["MTSICSBalance", "WeightReading"]

log = logging.getLogger(__name__)

CMD_STABLE = "S"
CMD_IMMEDIATE = "SI"
CMD_ZERO = "Z"
CMD_TARE = "T"
CMD_RESET = "@"
DEFAULT_BAUDRATE = 9600  # baud, MT factory default
DEFAULT_TIMEOUT_S = 2.0  # s; a stable weight can take a while

_UNIT_TO_G = {"g": 1.0, "mg": 1e-3, "kg": 1e3}
_ERRORS: dict[str, type[InstrumentError]] = {
    "ES": BalanceSyntaxError,
    "ET": BalanceTransmissionError,
    "EL": BalanceLogicalError,
}
_STATUS_ERRORS: dict[str, type[InstrumentError]] = {
    "I": BalanceBusy,
    "+": BalanceOverload,
    "-": BalanceUnderload,
}
_WEIGHT = re.compile(
    r"^(?P<cmd>SI|S|T) (?P<status>[SD]) +(?P<value>[-+]?\d+(\.\d*)?) +(?P<unit>\S+)$")


@dataclass(frozen=True)
class WeightReading:
    """One weight value: ``mass`` in g, ``stable`` False for a dynamic (``SI``) value."""

    mass: float
    stable: bool


class MTSICSBalance:
    """MT-SICS balance on an injected pyserial-like port.

    Args:
        port: open pyserial port or test double (``read_until``/``write``/...).
        timeout_s: reply timeout per attempt, s (written to ``port.timeout``).
        retries: extra attempts for ``S``/``SI`` after a timeout, garbled reply or ``ET``.
        backoff_s: delay before the first retry, s (doubles each retry).
    """

    def __init__(self, port: Any, timeout_s: float = DEFAULT_TIMEOUT_S, retries: int = 2,
                 backoff_s: float = 0.02) -> None:
        if not (timeout_s > 0 and backoff_s >= 0 and 0 <= retries <= 10):
            raise ValueError("timeout_s must be > 0, backoff_s >= 0, retries in 0..10")
        port.timeout = timeout_s
        self.port = port
        self.retries = retries
        self.backoff_s = backoff_s
        self._io = LineTransport(port, "balance")

    @classmethod
    def from_url(cls, url: str, baudrate: int = DEFAULT_BAUDRATE, **kwargs: Any
                 ) -> MTSICSBalance:
        """Open ``url`` (device path, ``socket://``, ``loop://``) and connect."""
        port = serial.serial_for_url(url, baudrate=baudrate,
                                     timeout=kwargs.get("timeout_s", DEFAULT_TIMEOUT_S))
        return cls(port, **kwargs)

    def close(self) -> None:
        """Close the port."""
        self.port.close()

    # -- parsing --------------------------------------------------------------------------
    @staticmethod
    def _raise_for_error(cmd: str, reply: str) -> None:
        if reply in _ERRORS:
            raise _ERRORS[reply](f"balance replied {reply!r} to {cmd!r}")
        parts = reply.split()
        if len(parts) == 2 and parts[0] == cmd and parts[1] in _STATUS_ERRORS:
            raise _STATUS_ERRORS[parts[1]](f"balance replied {reply!r} to {cmd!r}")

    def _weight(self, cmd: str, reply: str) -> WeightReading:
        self._raise_for_error(cmd, reply)
        m = _WEIGHT.match(reply)
        if m is None or m["cmd"] != cmd:
            raise ProtocolError(f"balance: unexpected reply {reply!r} to {cmd!r}")
        unit = m["unit"]
        if unit not in _UNIT_TO_G:
            raise ProtocolError(f"balance: unsupported unit {unit!r} in {reply!r}")
        mass = float(m["value"]) * _UNIT_TO_G[unit]
        if not math.isfinite(mass):
            raise ProtocolError(f"balance: non-finite mass in {reply!r}")
        return WeightReading(mass, m["status"] == "S")

    def _read_weight(self, cmd: str) -> WeightReading:
        attempt = 0
        while True:
            try:
                reading = self._weight(cmd, self._io.transact(cmd))
                log.debug("balance %s -> %s g (stable=%s)", cmd, reading.mass, reading.stable)
                return reading
            except (InstrumentTimeout, ProtocolError, BalanceTransmissionError) as err:
                if attempt >= self.retries:
                    log.warning("balance %s failed after %d attempt(s): %s", cmd, attempt + 1, err)
                    raise
                delay = self.backoff_s * 2**attempt
                log.info("balance %s: %s; retry %d in %.3f s", cmd, err, attempt + 1, delay)
                time.sleep(delay)
                attempt += 1

    # -- public API -----------------------------------------------------------------------
    def stable_mass(self) -> WeightReading:
        """``S``: wait for a stable weight; mass in g, ``stable`` is always True."""
        return self._read_weight(CMD_STABLE)

    def immediate_mass(self) -> WeightReading:
        """``SI``: current weight, stable or not; mass in g."""
        return self._read_weight(CMD_IMMEDIATE)

    def zero(self) -> None:
        """``Z``: set a new zero (sent once; replies ``Z A`` on success)."""
        reply = self._io.transact(CMD_ZERO)
        self._raise_for_error(CMD_ZERO, reply)
        if reply != "Z A":
            raise ProtocolError(f"balance: unexpected reply {reply!r} to 'Z'")
        log.info("balance zeroed")

    def tare(self) -> float:
        """``T``: tare the current load (sent once); returns the tare weight, g."""
        reading = self._weight(CMD_TARE, self._io.transact(CMD_TARE))
        log.info("balance tared at %s g", reading.mass)
        return reading.mass

    def reset(self) -> str:
        """``@``: reset the balance (cancels pending commands); returns its serial number."""
        reply = self._io.transact(CMD_RESET)
        self._raise_for_error(CMD_RESET, reply)
        m = re.fullmatch(r'I4 A "(?P<sn>[^"]*)"', reply)
        if m is None:
            raise ProtocolError(f"balance: unexpected reply {reply!r} to '@'")
        return m["sn"]
