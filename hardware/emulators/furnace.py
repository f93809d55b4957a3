"""Emulated Eurotherm furnace controller: a Modbus RTU slave on a pty.

Behind the register map (:mod:`synthgap.hardware.registers`) sits
:class:`synthgap.envs.lab.thermal.FurnaceThermalModel`, advanced in (optionally
accelerated) real time: ``time_scale`` simulated seconds per wall-clock second.
Supports function codes 3 (read holding registers), 6 (write one) and 16 (write many).
Exception replies: 1 illegal function, 2 illegal data address (unknown or read-only
register), 3 illegal data value (outside the setpoint limits, negative rate).
Frames with a bad CRC or another slave address are ignored, as on a real bus.
"""

from __future__ import annotations

import logging
import math
import struct
import time
from collections.abc import Callable

import numpy as np

from synthgap.envs.lab.thermal import FurnaceParams, FurnaceThermalModel

from ..registers import Register, register
from .base import PtyEmulator

__all__ = ["FurnaceEmulator", "crc16"]

log = logging.getLogger(__name__)

ZERO_CELSIUS_K = 273.15  # K
MAX_STEP_S = 1.0  # s, simulated sub-step for the physics
MAX_SUBSTEPS = 2000  # cap per request; longer gaps use longer (still exact) steps

ILLEGAL_FUNCTION = 1
ILLEGAL_ADDRESS = 2
ILLEGAL_VALUE = 3
DEVICE_FAILURE = 4


def crc16(data: bytes) -> bytes:
    """Modbus RTU CRC-16 (poly 0xA001, init 0xFFFF), low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return struct.pack("<H", crc)


class FurnaceEmulator(PtyEmulator):
    """Modbus RTU furnace controller emulator.

    Args:
        params: furnace physics; ``None`` for defaults.
        rng: generator for the physics noise (default: seed 0).
        slave: Modbus slave address answered.
        decimals: temperature resolution on the wire (as configured in the driver).
        time_scale: simulated seconds per wall-clock second.
        clock: wall clock, s (injectable for tests).
    """

    def __init__(self, params: FurnaceParams | None = None,
                 rng: np.random.Generator | None = None, slave: int = 1,
                 decimals: int = 1, time_scale: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__("furnace", frame_mode="gap")
        if not (time_scale > 0 and math.isfinite(time_scale)):
            raise ValueError(f"time_scale {time_scale!r} must be finite and > 0")
        self.params = params or FurnaceParams()
        self.model = FurnaceThermalModel(self.params, rng or np.random.default_rng(0))
        self.slave = slave
        self.decimals = decimals
        self.time_scale = time_scale
        self.clock = clock
        self._last = clock()
        ambient_C = self.params.ambient_K - ZERO_CELSIUS_K
        self.values: dict[str, float] = {  # wire units (degC, degC/min, %, raw)
            "target_setpoint": ambient_C,
            "working_setpoint": ambient_C,
            "setpoint_rate_limit": 0.0,
            "setpoint_high_limit": self.params.max_temperature_K - ZERO_CELSIUS_K,
            "setpoint_low_limit": 0.0,
            "programme_status": 1.0,
            "status_word": 0.0,
        }
        self.thermocouple_K = self.params.ambient_K + self.params.offset_K
        self.exception_code = DEVICE_FAILURE

    # -- physics -----------------------------------------------------------------------
    def advance(self, sim_s: float) -> None:
        """Advance the physics by ``sim_s`` simulated seconds (ramping the working SP)."""
        if sim_s <= 0:
            return
        with self.lock:
            n = int(min(max(1, math.ceil(sim_s / MAX_STEP_S)), MAX_SUBSTEPS))
            dt = np.full(n, sim_s / n)
            wsp0 = self.values["working_setpoint"]
            tsp = self.values["target_setpoint"]
            rate = self.values["setpoint_rate_limit"] / 60.0  # degC/s
            if rate > 0:
                travel = rate * np.cumsum(dt)
                wsp = wsp0 + np.sign(tsp - wsp0) * np.minimum(travel, abs(tsp - wsp0))
            else:
                wsp = np.full(n, tsp)
            _, tc = self.model.simulate(wsp + ZERO_CELSIUS_K, dt)
            self.values["working_setpoint"] = float(wsp[-1])
            self.thermocouple_K = float(tc[-1])

    def _sync_clock(self) -> None:
        now = self.clock()
        self.advance((now - self._last) * self.time_scale)
        self._last = now

    def _value(self, reg: Register) -> float:
        if reg.name == "process_value":
            return self.thermocouple_K - ZERO_CELSIUS_K
        if reg.name == "output_power":
            p = self.params
            y = self.model.state.controlled_K
            frac = (y - p.ambient_K) / (p.max_temperature_K - p.ambient_K)
            frac += self.model.state.rate_K_per_s * p.tau_s / (p.max_temperature_K - p.ambient_K)
            return float(np.clip(100.0 * frac, 0.0, 100.0))
        return self.values[reg.name]

    def _decimals(self, reg: Register) -> int:
        return self.decimals if reg.decimals is None else reg.decimals

    def _to_raw(self, reg: Register, value: float) -> int:
        raw = round(value * 10 ** self._decimals(reg))
        if reg.signed:
            raw = max(-32768, min(32767, raw))
            return raw & 0xFFFF
        return max(0, min(65535, raw))

    def _from_raw(self, reg: Register, raw: int) -> float:
        if reg.signed and raw >= 0x8000:
            raw -= 0x10000
        return raw / 10 ** self._decimals(reg)

    # -- protocol ----------------------------------------------------------------------
    def _exception(self, fc: int, code: int) -> bytes:
        body = bytes([self.slave, fc | 0x80, code])
        return body + crc16(body)

    def exception_reply(self, frame: bytes) -> bytes:
        fc = frame[1] if len(frame) > 1 else 3
        return self._exception(fc, self.exception_code)

    def handle_frame(self, frame: bytes) -> bytes | None:
        if len(frame) < 4 or crc16(frame[:-2]) != frame[-2:]:
            log.debug("furnace emulator: ignoring corrupt frame %s", frame.hex(" "))
            return None
        if frame[0] != self.slave:
            return None
        fc, body = frame[1], frame[2:-2]
        with self.lock:
            self._sync_clock()
            if fc == 3 and len(body) == 4:
                start, count = struct.unpack(">HH", body)
                words = []
                for addr in range(start, start + count):
                    try:
                        reg = register(addr)
                    except KeyError:
                        return self._exception(fc, ILLEGAL_ADDRESS)
                    words.append(self._to_raw(reg, self._value(reg)))
                payload = bytes([self.slave, 3, 2 * count]) + struct.pack(f">{count}H", *words)
                return payload + crc16(payload)
            if fc == 6 and len(body) == 4:
                addr, raw = struct.unpack(">HH", body)
                code = self._write(addr, raw)
                return self._exception(fc, code) if code else frame
            if fc == 16 and len(body) >= 5:
                start, count, nbytes = struct.unpack(">HHB", body[:5])
                if nbytes != 2 * count or len(body) != 5 + nbytes:
                    return self._exception(fc, ILLEGAL_VALUE)
                for i, raw in enumerate(struct.unpack(f">{count}H", body[5:])):
                    code = self._write(start + i, raw)
                    if code:
                        return self._exception(fc, code)
                payload = bytes([self.slave, 16]) + body[:4]
                return payload + crc16(payload)
            return self._exception(fc, ILLEGAL_FUNCTION)

    def _write(self, addr: int, raw: int) -> int:
        """Apply a register write; return 0 or a Modbus exception code."""
        try:
            reg = register(addr)
        except KeyError:
            return ILLEGAL_ADDRESS
        if not reg.writable:
            return ILLEGAL_ADDRESS
        value = self._from_raw(reg, raw)
        v = self.values
        if reg.name == "target_setpoint" and not (
                v["setpoint_low_limit"] <= value <= v["setpoint_high_limit"]):
            return ILLEGAL_VALUE
        if reg.name == "setpoint_high_limit" and not (
                v["setpoint_low_limit"] <= value
                <= self.params.max_temperature_K - ZERO_CELSIUS_K):
            return ILLEGAL_VALUE
        if reg.name == "setpoint_low_limit" and not (
                -ZERO_CELSIUS_K < value <= v["setpoint_high_limit"]):
            return ILLEGAL_VALUE
        if reg.name == "target_setpoint" and v["setpoint_rate_limit"] > 0:
            # A Eurotherm servos the working setpoint to the measured value on a change.
            v["working_setpoint"] = self.thermocouple_K - ZERO_CELSIUS_K
        v[reg.name] = value
        log.debug("furnace emulator: %s = %s %s", reg.name, value, reg.unit)
        return 0

