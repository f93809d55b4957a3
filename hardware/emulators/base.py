"""Pseudo-terminal emulator base: a background thread answering a real byte protocol.

The emulator owns both ends of a ``pty.openpty()`` pair, in raw mode; clients open
``emulator.device`` (e.g. ``/dev/pts/7``) with pyserial exactly as they would a USB
adapter. Faults for tests are queued with :meth:`PtyEmulator.inject` and consumed by
the next replies, one fault per reply. A late reply is scheduled, not slept on: the
emulator keeps reading (and answering) requests while it is pending, as a slave behind a
slow gateway would.
"""

from __future__ import annotations

import enum
import heapq
import logging
import os
import pty
import select
import threading
import time
import tty
from collections import deque
from typing import NamedTuple

__all__ = ["Fault", "InjectedFault", "PtyEmulator"]

log = logging.getLogger(__name__)

FRAME_GAP_S = 0.004  # s of line silence that ends a frame (Modbus RTU t3.5, generous)
POLL_S = 0.02  # s, thread wake-up period when idle


class Fault(enum.Enum):
    """Fault applied to the next reply."""

    NO_REPLY = "no_reply"  # swallow the request, send nothing
    BAD_CRC = "bad_crc"  # corrupt the checksum (Modbus) / a payload byte (ASCII)
    GARBAGE_PREFIX = "garbage_prefix"  # noise bytes before the reply
    TRUNCATED = "truncated"  # send only the first half of the reply
    EXCEPTION_REPLY = "exception_reply"  # device-level error reply (``code=`` for Modbus)
    CLOSE_PORT = "close_port"  # close the port instead of replying (the port vanishes)
    LATE_REPLY = "late_reply"  # send the correct reply ``delay_s`` seconds later
    GARBAGE_ONLY = "garbage_only"  # noise bytes instead of the reply
    TRAILING_GARBAGE = "trailing_garbage"  # noise bytes right after the reply


class InjectedFault(NamedTuple):
    """One queued fault: what, and its parameters."""

    fault: Fault
    delay_s: float = 0.0  # LATE_REPLY: seconds after the request
    code: int | None = None  # EXCEPTION_REPLY: device error code (None: the default)


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
        self.faults: deque[InjectedFault] = deque()
        self._scheduled: list[tuple[float, int, bytes]] = []  # (due, seq, bytes): late replies
        self._seq = 0
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
        self.warm_up()
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
        with self.lock:
            self._scheduled.clear()

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
    def inject(self, fault: Fault, count: int = 1, *, delay_s: float = 0.0,
               code: int | None = None) -> None:
        """Apply ``fault`` to each of the next ``count`` replies.

        Args:
            delay_s: ``Fault.LATE_REPLY``: how late the reply comes, s (>= 0).
            code: ``Fault.EXCEPTION_REPLY``: the device error code (e.g. a Modbus exception
                code); ``None`` for the emulator's default.
        """
        if not (isinstance(count, int) and count >= 0):
            raise ValueError(f"count {count!r} must be an int >= 0")
        if not 0 <= delay_s < float("inf"):
            raise ValueError(f"delay_s {delay_s!r} must be finite and >= 0")
        with self.lock:
            self.faults.extend([InjectedFault(fault, delay_s, code)] * count)

    def _next_fault(self) -> InjectedFault | None:
        with self.lock:
            return self.faults.popleft() if self.faults else None

    # -- I/O ------------------------------------------------------------------------------
    def _send_due(self) -> float:
        """Send the late replies that are due; return seconds until the next one (or POLL_S)."""
        now = time.monotonic()
        while True:
            with self.lock:
                if not self._scheduled or self._scheduled[0][0] > now:
                    return min(POLL_S, self._scheduled[0][0] - now) if self._scheduled else POLL_S
                _, _, data = heapq.heappop(self._scheduled)
            self.send(data)

    def _run(self) -> None:
        buf = bytearray()
        while not self._stop.is_set():
            fd = self._master
            if fd is None:
                return
            until_due = self._send_due()
            timeout = FRAME_GAP_S if (buf and self.frame_mode == "gap") else until_due
            try:
                ready, _, _ = select.select([fd], [], [], timeout)
                data = os.read(fd, 4096) if ready else b""
            except (OSError, ValueError):
                return
            if data:
                buf += data
                if self.frame_mode == "gap" and self.frame_complete(bytes(buf)):
                    frame = bytes(buf)  # complete and valid: no need to wait for the gap
                    buf.clear()
                    self._dispatch(frame)
                    continue
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
        injected = self._next_fault()
        fault = injected.fault if injected is not None else None
        if injected is not None:
            log.info("%s emulator injecting %s", self.name, injected)
        if fault is Fault.NO_REPLY:
            return
        if fault is Fault.CLOSE_PORT:
            self._close_master()
            return
        if fault is Fault.LATE_REPLY:
            with self.lock:
                self._seq += 1
                heapq.heappush(self._scheduled,
                               (time.monotonic() + injected.delay_s, self._seq, reply))
            return
        if fault is Fault.BAD_CRC:
            reply = reply[:-1] + bytes([reply[-1] ^ 0xFF]) if self.frame_mode == "gap" \
                else self.corrupt_line(reply)
        elif fault is Fault.GARBAGE_PREFIX:
            reply = self.GARBAGE + reply
        elif fault is Fault.GARBAGE_ONLY:
            reply = self.GARBAGE
        elif fault is Fault.TRAILING_GARBAGE:
            reply = reply + self.GARBAGE
        elif fault is Fault.TRUNCATED:
            reply = reply[: max(1, len(reply) // 2)]
        elif fault is Fault.EXCEPTION_REPLY:
            reply = self.exception_reply(frame) if injected.code is None \
                else self.exception_reply(frame, code=injected.code)
        self.send(reply)

    def send(self, data: bytes) -> None:
        with self.lock:
            if self._master is not None:
                os.write(self._master, data)

    # -- subclass hooks ------------------------------------------------------------------
    def frame_complete(self, buf: bytes) -> bool:
        """Gap-framed protocols: whether ``buf`` already is one whole, valid request (then
        it is answered without waiting ``FRAME_GAP_S``). Default: wait for the gap."""
        return False

    def warm_up(self) -> None:
        """Do any slow first-time work (JIT compiling) before the port exists, so the
        first request is answered as fast as any other. Default: nothing."""

    def handle_frame(self, frame: bytes) -> bytes | None:
        """Return the reply to one request frame (``None``: stay silent)."""
        raise NotImplementedError

    def exception_reply(self, frame: bytes) -> bytes:
        """Device-level error reply used by ``Fault.EXCEPTION_REPLY`` (an emulator with
        several error codes also takes ``code=``)."""
        raise NotImplementedError

    def corrupt_line(self, reply: bytes) -> bytes:
        """ASCII protocols: damage a reply so that it no longer parses."""
        return b"#" + reply[1:]
