"""Emulated Eurotherm furnace controller: a Modbus RTU slave on a pty.

Behind the register map (:mod:`synthgap.hardware.registers`, whose ``encode``/``decode``
are the only scaling used here) sits
:class:`synthgap.envs.lab.thermal.FurnaceThermalModel`, advanced in (optionally
accelerated) real time: ``time_scale`` simulated seconds per wall-clock second.

Answers like the instrument:

- function codes 3 and 4 (read holding / input registers: the same parameters), 6 (write
  one) and 16 (write many); any other code: exception 1;
- broadcast (slave 0): writes are executed with no reply, reads are ignored;
- exception 2 (illegal data address) for an unknown or read-only register, exception 3
  (illegal data value) for a count outside 1..125 (reads) / 1..123 (writes), a byte count
  that does not match, and a value outside the register's limits: the register map's valid
  range on every writable register (so a rate limit of raw 0xFFFF is refused), a setpoint
  outside [low limit, high limit], a high limit below the low limit or above the furnace
  maximum, a low limit above the high limit;
- frames with a bad CRC or another slave address are ignored, as on a real bus;
- the numba-compiled physics is warmed (one throwaway model step) in :meth:`warm_up`,
  before the port exists, so the first request is answered within any sane timeout.

``sensor_break = True`` emulates an open thermocouple: the process value reads as the
no-value code 0x8000 and status bit 5 is set; a process value outside the valid range
reads 0x8000 with status bit 10.
"""

from __future__ import annotations

import logging
import math
import struct
import time
from collections.abc import Callable

import numpy as np

from synthgap.envs.lab.thermal import FurnaceParams, FurnaceThermalModel

from ..errors import ImplausibleReading
from ..registers import (
    NO_VALUE_RAW,
    PV_OUT_OF_RANGE_BIT,
    SENSOR_BREAK_BIT,
    ZERO_CELSIUS_K,
    Register,
    crc16,
    decode,
    encode,
    register,
)
from .base import PtyEmulator

__all__ = ["FurnaceEmulator", "crc16"]

log = logging.getLogger(__name__)

MAX_STEP_S = 1.0  # s, simulated sub-step for the physics
MAX_SUBSTEPS = 2000  # cap per request; longer gaps use longer (still exact) steps
BROADCAST = 0  # slave address of a broadcast request
READ_FUNCTIONS = (3, 4)  # read holding registers, read input registers
WRITE_ONE, WRITE_MANY = 6, 16
MAX_READ_COUNT = 125  # registers per read request (Modbus application protocol)
MAX_WRITE_COUNT = 123  # registers per write-multiple request

ILLEGAL_FUNCTION = 1
ILLEGAL_ADDRESS = 2
ILLEGAL_VALUE = 3
DEVICE_FAILURE = 4


class FurnaceEmulator(PtyEmulator):
    """Modbus RTU furnace controller emulator.

    Args:
        params: furnace physics; ``None`` for defaults.
        rng: generator for the physics noise (default: seed 0).
        slave: Modbus slave address answered, 1-247.
        decimals: temperature resolution on the wire (as configured in the driver), 0-2.
        time_scale: simulated seconds per wall-clock second.
        clock: wall clock, s (injectable for tests).

    Attributes:
        sensor_break: emulate an open thermocouple (see module docstring).
        exception_code: code sent by ``Fault.EXCEPTION_REPLY`` without ``code=``.
    """

    def __init__(self, params: FurnaceParams | None = None,
                 rng: np.random.Generator | None = None, slave: int = 1,
                 decimals: int = 1, time_scale: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__("furnace", frame_mode="gap")
        if not (time_scale > 0 and math.isfinite(time_scale)):
            raise ValueError(f"time_scale {time_scale!r} must be finite and > 0")
        if isinstance(slave, bool) or not (isinstance(slave, int) and 1 <= slave <= 247):
            raise ValueError(f"slave address {str(slave)[:20]!r} not in 1..247")
        if isinstance(decimals, bool) or decimals not in (0, 1, 2):
            raise ValueError(f"decimals {str(decimals)[:20]!r} not in (0, 1, 2)")
        self.params = params or FurnaceParams()
        self.model = FurnaceThermalModel(self.params, rng or np.random.default_rng(0))
        self.slave = slave
        self.decimals = decimals
        self.time_scale = time_scale
        self.clock = clock
        self._last = clock()
        ambient_C = self._on_wire("target_setpoint", self.params.ambient_K - ZERO_CELSIUS_K)
        self.values: dict[str, float] = {  # wire units (degC, degC/min, %, raw), on the wire grid
            "target_setpoint": ambient_C,
            "working_setpoint": ambient_C,
            "setpoint_rate_limit": 0.0,
            "setpoint_high_limit": self._on_wire("setpoint_high_limit", min(
                self.params.max_temperature_K - ZERO_CELSIUS_K, self._highest("setpoint_high_limit"))),
            "setpoint_low_limit": 0.0,
            "programme_status": 1.0,
            "status_word": 0.0,
        }
        self.thermocouple_K = self.params.ambient_K + self.params.offset_K
        self.exception_code = DEVICE_FAILURE
        self.sensor_break = False

    def _on_wire(self, name: str, value: float) -> float:
        reg = register(name)
        return decode(reg, encode(reg, value, self.decimals), self.decimals)

    def _highest(self, name: str) -> float:
        """Highest value of register ``name`` the wire can carry at this resolution."""
        reg = register(name)
        return min(reg.valid[1], (32767 if reg.signed else 65535) / 10**self.decimals)

    def warm_up(self) -> None:
        """Compile the physics kernels with a throwaway model (the real model's random
        stream is untouched), before :meth:`start` opens the port."""
        scratch = FurnaceThermalModel(self.params, np.random.default_rng(0))
        scratch.simulate(np.array([self.params.ambient_K]), np.array([MAX_STEP_S]))

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

    def _pv_raw(self) -> int | None:
        """Raw process value, or ``None`` when the input cannot report one."""
        if self.sensor_break:
            return None
        try:
            return encode(register("process_value"), self._value(register("process_value")),
                          self.decimals)
        except ValueError:  # over / under the input range
            return None

    def _raw(self, reg: Register) -> int:
        """The word a read of ``reg`` returns now."""
        if reg.name == "process_value":
            raw = self._pv_raw()
            return NO_VALUE_RAW if raw is None else raw
        if reg.name == "status_word":
            status = int(self.values["status_word"])
            if self.sensor_break:
                status |= 1 << SENSOR_BREAK_BIT
            elif self._pv_raw() is None:
                status |= 1 << PV_OUT_OF_RANGE_BIT
            return status & 0xFFFF
        try:
            return encode(reg, self._value(reg), self.decimals)
        except ValueError:  # e.g. a working setpoint servoed to an out-of-range input
            return NO_VALUE_RAW

    # -- protocol ----------------------------------------------------------------------
    def _exception(self, fc: int, code: int) -> bytes:
        body = bytes([self.slave, (fc | 0x80) & 0xFF, code & 0xFF])
        return body + crc16(body)

    def exception_reply(self, frame: bytes, code: int | None = None) -> bytes:
        fc = frame[1] if len(frame) > 1 else 3
        return self._exception(fc, self.exception_code if code is None else code)

    def frame_complete(self, buf: bytes) -> bool:
        """A request is complete when its function code's length is reached and the CRC
        checks (a corrupt or unknown frame still ends at the line gap)."""
        if len(buf) < 8:
            return False
        fc = buf[1]
        size = 9 + buf[6] if fc == WRITE_MANY else 8
        return len(buf) == size and crc16(buf[:-2]) == buf[-2:]

    def handle_frame(self, frame: bytes) -> bytes | None:
        if len(frame) < 4 or crc16(frame[:-2]) != frame[-2:]:
            log.debug("furnace emulator: ignoring corrupt frame %s", frame.hex(" "))
            return None
        if frame[0] not in (self.slave, BROADCAST):
            return None
        broadcast = frame[0] == BROADCAST
        fc, body = frame[1], frame[2:-2]
        with self.lock:
            self._sync_clock()
            if fc in READ_FUNCTIONS:
                return None if broadcast else self._read_reply(fc, body)
            if fc == WRITE_ONE:
                reply = self._write_one(fc, body, frame)
            elif fc == WRITE_MANY:
                reply = self._write_many(fc, body)
            else:
                reply = self._exception(fc, ILLEGAL_FUNCTION)
            return None if broadcast else reply

    def _read_reply(self, fc: int, body: bytes) -> bytes:
        if len(body) != 4:
            return self._exception(fc, ILLEGAL_VALUE)
        start, count = struct.unpack(">HH", body)
        if not 1 <= count <= MAX_READ_COUNT:
            return self._exception(fc, ILLEGAL_VALUE)
        words = []
        for addr in range(start, start + count):
            try:
                reg = register(addr)
            except KeyError:
                return self._exception(fc, ILLEGAL_ADDRESS)
            words.append(self._raw(reg))
        payload = bytes([self.slave, fc, 2 * count]) + struct.pack(f">{count}H", *words)
        return payload + crc16(payload)

    def _write_one(self, fc: int, body: bytes, frame: bytes) -> bytes:
        if len(body) != 4:
            return self._exception(fc, ILLEGAL_VALUE)
        addr, raw = struct.unpack(">HH", body)
        code = self._write(addr, raw)
        return self._exception(fc, code) if code else frame

    def _write_many(self, fc: int, body: bytes) -> bytes:
        if len(body) < 5:
            return self._exception(fc, ILLEGAL_VALUE)
        start, count, nbytes = struct.unpack(">HHB", body[:5])
        if not 1 <= count <= MAX_WRITE_COUNT or nbytes != 2 * count or len(body) != 5 + nbytes:
            return self._exception(fc, ILLEGAL_VALUE)
        for i, raw in enumerate(struct.unpack(f">{count}H", body[5:])):
            code = self._write(start + i, raw)
            if code:
                return self._exception(fc, code)
        payload = bytes([self.slave, fc]) + body[:4]
        return payload + crc16(payload)

    def _write(self, addr: int, raw: int) -> int:
        """Apply a register write; return 0 or a Modbus exception code."""
        try:
            reg = register(addr)
        except KeyError:
            return ILLEGAL_ADDRESS
        if not reg.writable:
            return ILLEGAL_ADDRESS
        try:
            value = decode(reg, raw, self.decimals)
        except ImplausibleReading:  # the no-value code or outside the register's range
            return ILLEGAL_VALUE
        v = self.values
        max_C = self.params.max_temperature_K - ZERO_CELSIUS_K
        if reg.name == "target_setpoint" and not (
                v["setpoint_low_limit"] <= value <= v["setpoint_high_limit"]):
            return ILLEGAL_VALUE
        if reg.name == "setpoint_high_limit" and not v["setpoint_low_limit"] <= value <= max_C:
            return ILLEGAL_VALUE
        if reg.name == "setpoint_low_limit" and not value <= v["setpoint_high_limit"]:
            return ILLEGAL_VALUE
        if reg.name == "target_setpoint" and v["setpoint_rate_limit"] > 0:
            # A Eurotherm servos the working setpoint to the measured value on a change.
            v["working_setpoint"] = self.thermocouple_K - ZERO_CELSIUS_K
        v[reg.name] = value
        log.debug("furnace emulator: %s = %s %s", reg.name, value, reg.unit)
        return 0
