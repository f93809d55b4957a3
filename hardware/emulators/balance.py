"""Emulated MT-SICS balance on a pty (``S``, ``SI``, ``Z``, ``T``, ``@``).

The displayed net mass is ``true_mass_g - zero_g - tare_g + noise``; ``S`` replies
are always stable, ``SI`` is dynamic (``S D``) while ``unstable`` is set. Gross loads above
``capacity_g`` reply ``<cmd> +``; below ``-1 %`` of capacity (pan removed) ``<cmd> -``.
Unknown commands reply ``ES``; ``Fault.EXCEPTION_REPLY`` sends ``<cmd> I`` (busy).
"""

from __future__ import annotations

import numpy as np

from .base import PtyEmulator

__all__ = ["BalanceEmulator"]


class BalanceEmulator(PtyEmulator):
    """MT-SICS balance emulator.

    Args:
        true_mass_g: mass on the pan, g (change it at any time).
        noise_g: standard deviation of the reading noise, g.
        capacity_g: weighing range, g.
        serial_number: returned by ``@``.
        rng: generator for the noise (default seed 0).
    """

    def __init__(self, true_mass_g: float = 0.0, noise_g: float = 1e-4,
                 capacity_g: float = 220.0, serial_number: str = "B000000001",
                 rng: np.random.Generator | None = None) -> None:
        super().__init__("balance", frame_mode="line")
        self.true_mass_g = true_mass_g
        self.noise_g = noise_g
        self.capacity_g = capacity_g
        self.serial_number = serial_number
        self.rng = rng or np.random.default_rng(0)
        self.zero_g = 0.0
        self.tare_g = 0.0
        self.unstable = False

    def _gross(self) -> float:
        return self.true_mass_g - self.zero_g + float(self.rng.normal(0.0, self.noise_g))

    def _range_error(self, cmd: str, gross: float) -> bytes | None:
        if gross > self.capacity_g:
            return f"{cmd} +\r\n".encode()
        if gross < -self.capacity_g * 0.01:
            return f"{cmd} -\r\n".encode()
        return None

    def handle_frame(self, frame: bytes) -> bytes | None:
        cmd = frame.decode("ascii", errors="replace").strip()
        with self.lock:
            if cmd in ("S", "SI"):
                gross = self._gross()
                err = self._range_error(cmd, gross)
                if err:
                    return err
                status = "D" if (cmd == "SI" and self.unstable) else "S"
                return f"{cmd} {status} {gross - self.tare_g:>10.4f} g\r\n".encode()
            if cmd == "Z":
                gross = self._gross()
                err = self._range_error(cmd, gross)
                if err:
                    return err
                self.zero_g += gross
                self.tare_g = 0.0
                return b"Z A\r\n"
            if cmd == "T":
                gross = self._gross()
                err = self._range_error(cmd, gross)
                if err:
                    return err
                self.tare_g = gross
                return f"T S {gross:>10.4f} g\r\n".encode()
            if cmd == "@":
                return f'I4 A "{self.serial_number}"\r\n'.encode()
            return b"ES\r\n"

    def exception_reply(self, frame: bytes) -> bytes:
        cmd = frame.decode("ascii", errors="replace").strip() or "S"
        return f"{cmd} I\r\n".encode()
