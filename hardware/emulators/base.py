"""Pseudo-terminal emulator base: a background thread answering a real byte protocol.

The emulator owns both ends of a ``pty.openpty()`` pair, in raw mode; clients open
``emulator.device`` (e.g. ``/dev/pts/7``) with pyserial exactly as they would a USB
adapter. Faults for tests are queued with :meth:`PtyEmulator.inject` and consumed by
the next replies, one fault per reply.
"""

from __future__ import annotations

import enum
import logging
import os
import pty
import select
import threading
import tty
from collections import deque

__all__ = ["Fault", "PtyEmulator"]

log = logging.getLogger(__name__)

FRAME_GAP_S = 0.004  # s of line silence that ends a frame (Modbus RTU t3.5, generous)
POLL_S = 0.02  # s, thread wake-up period when idle


class Fault(enum.Enum):
    """Fault applied to the next reply."""

    NO_REPLY = "no_reply"  # swallow the request, send nothing
    BAD_CRC = "bad_crc"  # corrupt the checksum (Modbus) / a payload byte (ASCII)
    GARBAGE_PREFIX = "garbage_prefix"  # noise bytes before the reply
    TRUNCATED = "truncated"  # send only the first half of the reply
    EXCEPTION_REPLY = "exception_reply"  # device-level error reply
    CLOSE_PORT = "close_port"  # close the port instead of replying


class PtyEmulator:
    """Base class; subclasses implement :meth:`handle_frame` (Modbus) or lines (ASCII).

    Args:
        name: label used in logs and thread names.
        frame_mode: ``"gap"`` (a frame ends after ``FRAME_GAP_S`` of silence) or
            ``"line"`` (a frame ends with CR LF).
    """

    GARBAGE = b"\x00\xff\x13\x37"

    def __init__(self, name: str, frame_mode: str = "gap") -> None:
        if frame_mode not in ("gap", "line"):
            raise ValueError(f"frame_mode {frame_mode!r}")
        self.name = name
        self.frame_mode = frame_mode
        self.faults: deque[Fault] = deque()
        self.lock = threading.RLock()
        self.requests: list[bytes] = []
        self._master: int | None = None
        self._slave: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.device = ""

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> str:
        """Open the pty pair, start the thread, return the client device path."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} emulator already started")
        self._master, self._slave = pty.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        self.device = os.ttyname(self._slave)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"emu-{self.name}", daemon=True)
        self._thread.start()
        log.info("%s emulator on %s", self.name, self.device)
        return self.device

    def stop(self) -> None:
        """Stop the thread and close both pty ends (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self._close_master()
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None

    def __enter__(self) -> PtyEmulator:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _close_master(self) -> None:
        with self.lock:
            if self._master is not None:
                os.close(self._master)
                self._master = None

    # -- faults ---------------------------------------------------------------------------
    def inject(self, fault: Fault, count: int = 1) -> None:
        """Apply ``fault`` to each of the next ``count`` replies."""
        with self.lock:
            self.faults.extend([fault] * count)

    def _next_fault(self) -> Fault | None:
        with self.lock:
            return self.faults.popleft() if self.faults else None

    # -- I/O ------------------------------------------------------------------------------
    def _run(self) -> None:
        buf = bytearray()
        while not self._stop.is_set():
            fd = self._master
            if fd is None:
                return
            timeout = FRAME_GAP_S if (buf and self.frame_mode == "gap") else POLL_S
            try:
                ready, _, _ = select.select([fd], [], [], timeout)
                data = os.read(fd, 4096) if ready else b""
            except (OSError, ValueError):
                return
            if data:
                buf += data
                if self.frame_mode == "line":
                    while (idx := buf.find(b"\r\n")) >= 0:
                        line = bytes(buf[:idx])
                        del buf[:idx + 2]
                        self._dispatch(line)
                continue
            if buf and self.frame_mode == "gap":
                frame = bytes(buf)
                buf.clear()
                self._dispatch(frame)

    def _dispatch(self, frame: bytes) -> None:
        self.requests.append(frame)
        try:
            reply = self.handle_frame(frame)
        except Exception:  # an emulator bug must not kill the thread silently
            log.exception("%s emulator failed on %r", self.name, frame)
            return
        if reply is None:
            return
        fault = self._next_fault()
        if fault is not None:
            log.info("%s emulator injecting %s", self.name, fault.value)
        if fault is Fault.NO_REPLY:
            return
        if fault is Fault.CLOSE_PORT:
            self._close_master()
            return
        if fault is Fault.BAD_CRC:
            reply = reply[:-1] + bytes([reply[-1] ^ 0xFF]) if self.frame_mode == "gap" \
                else self.corrupt_line(reply)
        elif fault is Fault.GARBAGE_PREFIX:
            reply = self.GARBAGE + reply
        elif fault is Fault.TRUNCATED:
            reply = reply[: max(1, len(reply) // 2)]
        elif fault is Fault.EXCEPTION_REPLY:
            reply = self.exception_reply(frame)
        self.send(reply)

    def send(self, data: bytes) -> None:
        with self.lock:
            if self._master is not None:
                os.write(self._master, data)

    # -- subclass hooks ------------------------------------------------------------------
    def handle_frame(self, frame: bytes) -> bytes | None:
        """Return the reply to one request frame (``None``: stay silent)."""
        raise NotImplementedError

    def exception_reply(self, frame: bytes) -> bytes:
        """Device-level error reply used by ``Fault.EXCEPTION_REPLY``."""
        raise NotImplementedError

    def corrupt_line(self, reply: bytes) -> bytes:
        """ASCII protocols: damage a reply so that it no longer parses."""
        return b"#" + reply[1:]
