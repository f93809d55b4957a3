"""CR LF terminated ASCII request/reply over an injected pyserial port (shared helper)."""

from __future__ import annotations

import logging
from typing import Any

from .errors import ConnectionLost, InstrumentTimeout, ProtocolError

try:  # termios.error (not an OSError) escapes pyserial's buffer resets on a dead pty
    import termios

    PORT_ERRORS: tuple[type[BaseException], ...] = (OSError, termios.error)
except ImportError:  # pragma: no cover - Windows
    PORT_ERRORS = (OSError,)

__all__ = ["EOL", "PORT_ERRORS", "LineTransport"]

log = logging.getLogger(__name__)

EOL = b"\r\n"  # line terminator, both directions
MAX_LINE = 256  # bytes; longer replies are protocol errors


class LineTransport:
    """Send one ASCII line and read one reply line.

    Args:
        port: open pyserial-like port; its ``timeout`` bounds the reply wait.
        name: instrument label for messages.
    """

    def __init__(self, port: Any, name: str) -> None:
        self.port = port
        self.name = name

    def transact(self, command: str) -> str:
        """Write ``command`` + CR LF, return the reply line without CR LF.

        Raises:
            InstrumentTimeout: no reply, or a reply cut off before CR LF.
            ProtocolError: reply not ASCII or too long.
            ConnectionLost: the port failed.
        """
        try:
            self.port.reset_input_buffer()
            self.port.write(command.encode("ascii") + EOL)
            raw = self.port.read_until(EOL, MAX_LINE)
        except PORT_ERRORS as exc:
            raise ConnectionLost(f"{self.name}: port lost during {command!r}: {exc}") from exc
        log.debug("%s: %r -> %r", self.name, command, raw)
        if not raw:
            raise InstrumentTimeout(f"{self.name}: no reply to {command!r}")
        if not raw.endswith(EOL):
            if len(raw) >= MAX_LINE:
                raise ProtocolError(f"{self.name}: reply to {command!r} too long: {raw!r}")
            raise InstrumentTimeout(f"{self.name}: truncated reply to {command!r}: {raw!r}")
        try:
            return raw[:-2].decode("ascii")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"{self.name}: non-ASCII reply to {command!r}: {raw!r}") from exc
