"""An independent Modbus RTU slave on a real pseudo-terminal, for fault tests.

Independent of the project's register map and scaling (it stores raw words), so a bug
shared by the driver and the emulator cannot hide; it uses only the project's CRC.
``respond`` decides, per request, which byte strings go back and how late::

    peer.respond = lambda request, normal: [(0.7, normal)]  # every reply 0.7 s late

``normal`` is the correct reply (``None`` for a request the peer ignores). Returning
``PtyModbusPeer.VANISH`` closes the peer's end: the client's port fails as when a USB
adapter is pulled. Like a real (single-threaded) slave, the peer answers in request order:
a late reply holds back the replies to the requests queued behind it.
"""

from __future__ import annotations

import heapq
import os
import pty
import select
import struct
import threading
import time
import tty
from collections.abc import Callable

from synthgap.hardware.registers import crc16

FRAME_GAP_S = 0.004  # s of silence that ends a request frame
Action = list[tuple[float, bytes]]


def frame(*body: int) -> bytes:
    """``body`` bytes followed by their CRC."""
    data = bytes(body)
    return data + crc16(data)


class PtyModbusPeer:
    """Modbus RTU slave answering function codes 3 (read) and 6 (write) from raw words.

    Args:
        words: register address -> raw 16-bit word.
        slave: slave address answered.
    """

    VANISH: Action = [(-1.0, b"")]

    def __init__(self, words: dict[int, int], slave: int = 1) -> None:
        self.words = dict(words)
        self.slave = slave
        self.requests: list[bytes] = []
        self.respond: Callable[[bytes, bytes | None], Action] = lambda req, normal: (
            [(0.0, normal)] if normal is not None else [])
        self._master, self._slave_fd = pty.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave_fd)
        self.device = os.ttyname(self._slave_fd)
        self._master_open = True
        self._out: list[tuple[float, int, bytes]] = []
        self._seq = 0
        self._busy_until = 0.0  # monotonic s: when the latest scheduled reply goes out
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modbus-peer", daemon=True)
        self._thread.start()

    def normal_reply(self, request: bytes) -> bytes | None:
        """The correct reply to ``request`` (``None``: not for this slave / corrupt)."""
        if len(request) < 8 or crc16(request[:-2]) != request[-2:] or request[0] != self.slave:
            return None
        fc = request[1]
        addr, arg = struct.unpack(">HH", request[2:6])
        if fc == 3:
            if any(a not in self.words for a in range(addr, addr + arg)):
                return frame(self.slave, fc | 0x80, 2)
            data = b"".join(struct.pack(">H", self.words[a]) for a in range(addr, addr + arg))
            return frame(self.slave, 3, len(data), *data)
        if fc == 6:
            self.words[addr] = arg
            return request
        return frame(self.slave, fc | 0x80, 1)

    def _run(self) -> None:
        buf = bytearray()
        while not self._stop.is_set():
            now = time.monotonic()
            while self._out and self._out[0][0] <= now:
                _, _, data = heapq.heappop(self._out)
                os.write(self._master, data)
            wait = FRAME_GAP_S if buf else (
                min(0.02, self._out[0][0] - now) if self._out else 0.02)
            try:
                ready, _, _ = select.select([self._master], [], [], max(wait, 0.0))
                data = os.read(self._master, 4096) if ready else b""
            except (OSError, ValueError):
                return
            if data:
                buf += data
                continue
            if buf:
                request = bytes(buf)
                buf.clear()
                self.requests.append(request)
                action = self.respond(request, self.normal_reply(request))
                if action is self.VANISH:
                    self._master_open = False
                    os.close(self._master)
                    return
                for delay, reply in action:
                    self._seq += 1
                    self._busy_until = max(time.monotonic() + delay, self._busy_until)
                    heapq.heappush(self._out, (self._busy_until, self._seq, reply))

    def close(self) -> None:
        """Stop the thread and close both ends (idempotent)."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        if self._master_open:  # never close a number the VANISH path already released
            self._master_open = False
            os.close(self._master)
        if self._slave_fd >= 0:
            os.close(self._slave_fd)
            self._slave_fd = -1
