"""Emulated mill, press and robot arm speaking the line protocol of ``stations.py``."""

from __future__ import annotations

import re

from .base import PtyEmulator

__all__ = ["StationEmulator"]

_COMMANDS = {
    "mill": {"MILL": 2},
    "press": {"PRESS": 2},
    "robot": {"HOME": 0, "MOVE": 2},
}
_NUMBER = re.compile(r"^\d+(\.\d*)?(e[+-]?\d+)?$")


class StationEmulator(PtyEmulator):
    """One station (``kind`` in ``mill``, ``press``, ``robot``). Commands complete at once.

    ``executed`` records every accepted command line, for tests.
    """

    def __init__(self, kind: str, serial_number: str = "0001") -> None:
        if kind not in _COMMANDS:
            raise ValueError(f"unknown station kind {kind!r}; choose from {sorted(_COMMANDS)}")
        super().__init__(kind, frame_mode="line")
        self.kind = kind
        self.serial_number = serial_number
        self.executed: list[str] = []

    def handle_frame(self, frame: bytes) -> bytes | None:
        words = frame.decode("ascii", errors="replace").split()
        if not words:
            return b"ERR 1 empty command\r\n"
        head, args = words[0], words[1:]
        if head == "ID?":
            return f"OK EMU-{self.kind.upper()} {self.serial_number}\r\n".encode()
        if head == "STATUS?":
            return b"OK IDLE\r\n"
        if head == "STOP":
            return b"OK\r\n"
        nargs = _COMMANDS[self.kind].get(head)
        if nargs is None:
            return f"ERR 1 unknown command {head}\r\n".encode()
        if len(args) != nargs:
            return f"ERR 2 {head} takes {nargs} arguments\r\n".encode()
        if head in ("MILL", "PRESS") and not all(_NUMBER.match(a) for a in args):
            return f"ERR 2 bad number in {' '.join(args)}\r\n".encode()
        with self.lock:
            self.executed.append(" ".join(words))
        return b"OK\r\n"

    def exception_reply(self, frame: bytes) -> bytes:
        return b"ERR 5 hardware fault\r\n"
