"""Mill, press and robot arm over one simple ASCII line protocol (designed here).

Protocol (both directions CR LF terminated, ASCII, one reply per command):

========================  ==========================================  ==================
command                   meaning                                     OK payload
========================  ==========================================  ==================
``ID?``                   identify                                    ``<model> <serial>``
``STATUS?``               state                                       ``IDLE|BUSY|FAULT``
``STOP``                  stop motion now                             (none)
``MILL <rpm> <s>``        mill: speed rpm, duration s                 (none)
``PRESS <kN> <s>``        press: force kN, hold s                     (none)
``HOME``                  robot: go to the home pose                  (none)
``MOVE <from> <to>``      robot: carry a crucible between locations   (none)
========================  ==========================================  ==================

Replies: ``OK`` or ``OK <payload>`` on success, ``ERR <code> <text>`` on failure
(raised as :class:`~synthgap.hardware.errors.StationError`). Numbers are plain decimals.
Error codes: 1 unknown command, 2 bad argument, 3 busy, 4 interlock, 5 hardware fault.
Validators are strict (raise ``ValueError``), never clamp.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

import serial

from .drivers import STATION_STATUSES, StationStatus
from .errors import ProtocolError, StationError
from .lineio import LineTransport

__all__ = ["LineStation", "Mill", "Press", "RobotArm"]

log = logging.getLogger(__name__)

DEFAULT_BAUDRATE = 115200  # baud
DEFAULT_TIMEOUT_S = 1.0  # s
_LOCATION = re.compile(r"^[A-Z][A-Z0-9_]{0,31}$")


def _positive(name: str, value: float, maximum: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} {value!r} is not a number") from None
    if not (math.isfinite(value) and 0 < value <= maximum):
        raise ValueError(f"{name} {value!r} must be finite and in (0, {maximum}]")
    return value


class LineStation:
    """Base driver: one station on an injected pyserial-like port.

    Args:
        port: open pyserial port or test double.
        timeout_s: reply timeout, s (written to ``port.timeout``).
    """

    KIND = "station"

    def __init__(self, port: Any, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        port.timeout = timeout_s
        self.port = port
        self._io = LineTransport(port, self.KIND)

    @classmethod
    def from_url(cls, url: str, baudrate: int = DEFAULT_BAUDRATE, **kwargs: Any) -> Any:
        """Open ``url`` (device path, ``socket://``, ``loop://``) and connect."""
        port = serial.serial_for_url(url, baudrate=baudrate,
                                     timeout=kwargs.get("timeout_s", DEFAULT_TIMEOUT_S))
        return cls(port, **kwargs)

    def close(self) -> None:
        """Close the port."""
        self.port.close()

    def command(self, *words: object) -> str:
        """Send ``words`` joined by spaces; return the OK payload ('' if none)."""
        line = " ".join(str(w) for w in words)
        reply = self._io.transact(line)
        if reply == "OK":
            return ""
        if reply.startswith("OK "):
            return reply[3:]
        m = re.fullmatch(r"ERR (\d+) ?(.*)", reply)
        if m:
            log.warning("%s: %r -> %s", self.KIND, line, reply)
            raise StationError(int(m[1]), m[2])
        raise ProtocolError(f"{self.KIND}: unexpected reply {reply!r} to {line!r}")

    def identify(self) -> str:
        """Model and serial number."""
        return self.command("ID?")

    def status(self) -> StationStatus:
        """The station's state: ``IDLE``, ``BUSY`` or ``FAULT``."""
        state = self.command("STATUS?")
        for known in STATION_STATUSES:
            if state == known:
                return known
        raise ProtocolError(f"{self.KIND}: unknown status {state!r}")

    def stop(self) -> None:
        """Stop any motion immediately."""
        self.command("STOP")


class Mill(LineStation):
    """Planetary ball mill. Speed in rpm, duration in s."""

    KIND = "mill"
    MAX_RPM = 1100.0  # rpm
    MAX_DURATION_S = 24 * 3600.0  # s

    def mill(self, rpm: float, duration_s: float) -> None:
        """Start milling at ``rpm`` for ``duration_s`` s (returns once accepted)."""
        rpm = _positive("rpm", rpm, self.MAX_RPM)
        duration_s = _positive("duration_s", duration_s, self.MAX_DURATION_S)
        self.command("MILL", f"{rpm:g}", f"{duration_s:g}")


class Press(LineStation):
    """Uniaxial pellet press. Force in kN, hold time in s."""

    KIND = "press"
    MAX_FORCE_KN = 150.0  # kN
    MAX_HOLD_S = 3600.0  # s

    def press(self, force_kN: float, hold_s: float) -> None:
        """Press at ``force_kN`` kN for ``hold_s`` s."""
        force_kN = _positive("force_kN", force_kN, self.MAX_FORCE_KN)
        hold_s = _positive("hold_s", hold_s, self.MAX_HOLD_S)
        self.command("PRESS", f"{force_kN:g}", f"{hold_s:g}")


class RobotArm(LineStation):
    """Crucible-handling robot arm; locations are upper-case names like ``FURNACE1``."""

    KIND = "robot"

    def home(self) -> None:
        """Move to the home pose."""
        self.command("HOME")

    def move(self, source: str, destination: str) -> None:
        """Carry the crucible at ``source`` to ``destination``."""
        for what, loc in (("source", source), ("destination", destination)):
            if not (isinstance(loc, str) and _LOCATION.fullmatch(loc)):
                raise ValueError(f"{what} {loc!r} is not a location name like 'FURNACE1'")
        if source == destination:
            raise ValueError(f"source and destination are both {source!r}")
        self.command("MOVE", source, destination)
