"""Test helpers: a scripted fake serial port asserting exact bytes (no hardware).

In the style of pymeasure's ``expected_protocol``: a list of ``(written, reply)`` pairs;
every write must match the next ``written`` exactly, and then ``reply`` becomes readable.
``reply`` may be ``None`` (nothing comes back: the driver times out) or
``ScriptedPort.VANISH`` (the port disappears: reads raise ``serial.SerialException``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import serial

__all__ = ["ScriptedPort", "expected_protocol"]


class ScriptedPort:
    """Fake pyserial port replaying a scripted exchange; reads never block."""

    VANISH = object()

    def __init__(self, script: Sequence[tuple[bytes, object]]) -> None:
        self.script = list(script)
        self.index = 0
        self._pending_write = b""
        self._rx = bytearray()
        self._vanished = False
        self.is_open = True
        self.port = "scripted://"
        self.baudrate = 19200
        self.timeout: float | None = 0.1
        self.written: list[bytes] = []

    # pyserial surface used by the drivers
    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False

    @property
    def in_waiting(self) -> int:
        return len(self._rx)

    def reset_input_buffer(self) -> None:
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
            elif reply is not None:
                self._rx += bytes(reply)  # type: ignore[arg-type]
        return len(data)

    def read(self, size: int = 1) -> bytes:
        if self._vanished:
            raise serial.SerialException("device reports readiness to read but returned no data")
        out = bytes(self._rx[:size])
        del self._rx[:size]
        return out

    def read_until(self, expected: bytes = b"\n", size: int | None = None) -> bytes:
        if self._vanished:
            raise serial.SerialException("device reports readiness to read but returned no data")
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


@contextmanager
def expected_protocol(driver_cls: type, script: Sequence[tuple[bytes, object]],
                      **kwargs: object) -> Iterator[object]:
    """Yield ``driver_cls(ScriptedPort(script), **kwargs)``; assert the script completed."""
    port = ScriptedPort(script)
    driver = driver_cls(port, **kwargs)
    yield driver
    port.assert_done()
