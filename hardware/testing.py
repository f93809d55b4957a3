"""Test helpers: a scripted fake serial port asserting exact bytes (no hardware).

In the style of pymeasure's ``expected_protocol``: a list of ``(written, reply)`` pairs;
every write must match the next ``written`` exactly, and then ``reply`` becomes readable.
``reply`` may be ``None`` (nothing comes back: the driver times out),
``ScriptedPort.VANISH`` (the port disappears: reads raise ``serial.SerialException``) or
``Late(data, delay_s)`` (the bytes become readable ``delay_s`` seconds after the write,
like a slave answering after the master gave up: the stale-frame case of Modbus RTU).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import serial

__all__ = ["Late", "ScriptedPort", "expected_protocol"]


@dataclass(frozen=True)
class Late:
    """A scripted reply that arrives ``delay_s`` seconds (``ScriptedPort.clock``) after
    its request was written."""

    data: bytes
    delay_s: float


class ScriptedPort:
    """Fake pyserial port replaying a scripted exchange; reads never block."""

    VANISH = object()

    def __init__(self, script: Sequence[tuple[bytes, object]],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.script = list(script)
        self.clock = clock
        self._late: list[tuple[float, bytes]] = []
        self.index = 0
        self._pending_write = b""
        self._rx = bytearray()
        self._vanished = False
        self.is_open = True
        self.port = "scripted://"
        self.baudrate = 19200
        self.timeout: float | None = 0.1
        self.written: list[bytes] = []
        self.write_times: list[float] = []  # ``clock()`` at each write

    # pyserial surface used by the drivers
    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False

    def _deliver(self) -> None:
        now = self.clock()
        due = [item for item in self._late if item[0] <= now]
        self._late = [item for item in self._late if item[0] > now]
        for _, data in sorted(due, key=lambda item: item[0]):
            self._rx += data

    @property
    def in_waiting(self) -> int:
        self._deliver()
        return len(self._rx)

    def reset_input_buffer(self) -> None:
        self._deliver()
        self._rx.clear()

    def reset_output_buffer(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def write(self, data: bytes) -> int:
        if self._vanished:
            raise serial.SerialException("scripted port vanished")
        data = bytes(data)
        self.written.append(data)
        self.write_times.append(self.clock())
        self._pending_write += data
        if self.index >= len(self.script):
            raise AssertionError(f"unexpected write {data!r}: script exhausted")
        expected, reply = self.script[self.index]
        if not expected.startswith(self._pending_write):
            raise AssertionError(
                f"step {self.index}: wrote {self._pending_write.hex(' ')}, "
                f"expected {expected.hex(' ')}")
        if self._pending_write == expected:
            self._pending_write = b""
            self.index += 1
            if reply is ScriptedPort.VANISH:
                self._vanished = True
            elif isinstance(reply, Late):
                self._late.append((self.clock() + reply.delay_s, bytes(reply.data)))
            elif reply is not None:
                self._rx += bytes(reply)  # type: ignore[arg-type]
        return len(data)

    def read(self, size: int = 1) -> bytes:
        if self._vanished:
            raise serial.SerialException("device reports readiness to read but returned no data")
        self._deliver()
        out = bytes(self._rx[:size])
        del self._rx[:size]
        return out

    def read_until(self, expected: bytes = b"\n", size: int | None = None) -> bytes:
        if self._vanished:
            raise serial.SerialException("device reports readiness to read but returned no data")
        self._deliver()
        idx = self._rx.find(expected)
        end = len(self._rx) if idx < 0 else idx + len(expected)
        if size is not None:
            end = min(end, size)
        out = bytes(self._rx[:end])
        del self._rx[:end]
        return out

    def assert_done(self) -> None:
        """Assert every scripted exchange happened and nothing is left unread."""
        assert self.index == len(self.script), (
            f"only {self.index} of {len(self.script)} scripted exchanges happened")
        assert not self._pending_write, f"partial write left: {self._pending_write!r}"
        assert not self._late, f"{len(self._late)} late reply(ies) never became readable"


@contextmanager
def expected_protocol(driver_cls: type, script: Sequence[tuple[bytes, object]],
                      **kwargs: object) -> Iterator[object]:
    """Yield ``driver_cls(ScriptedPort(script), **kwargs)``; assert the script completed."""
    port = ScriptedPort(script)
    driver = driver_cls(port, **kwargs)
    yield driver
    port.assert_done()
