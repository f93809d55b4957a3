"""The faults a real Modbus RTU line has, against the Eurotherm driver: late replies (the
stale-frame case), corrupt frames, every exception code, a vanishing port, impossible
readings, and register encoding that must never round toward danger.

Two peers: ``ScriptedPort`` (byte-exact, no waiting) and ``PtyModbusPeer`` (an
independent slave on a real pseudo-terminal, see ``modbus_peer.py``).
"""

from __future__ import annotations

import subprocess
import sys

import minimalmodbus
import pytest
import serial
from modbus_peer import PtyModbusPeer, frame

from synthgap.hardware.errors import (
    ChecksumError,
    ConnectionLost,
    ImplausibleReading,
    InstrumentTimeout,
    ModbusAcknowledge,
    ModbusExceptionReply,
    ProtocolError,
)
from synthgap.hardware.eurotherm import MODBUS_EXCEPTIONS, EurothermController
from synthgap.hardware.registers import EUROTHERM_REGISTERS, decode, encode, resolution
from synthgap.hardware.testing import Late, ScriptedPort, expected_protocol

H = bytes.fromhex
READ_PV = H("01 03 00 01 00 01 D5 CA")
PV_400C = H("01 03 02 0F A0 BD CC")
READ_PV_BLOCK = H("01 03 00 01 00 02 95 CB")  # process value + target setpoint
PV_BLOCK_400C = H("01 03 04 0F A0 07 D0 FA A9")
READ_STATUS = H("01 03 00 4B 00 01 F4 1C")
READ_LOW_LIMIT = H("01 03 00 70 00 01 85 D1")  # register 112
LOW_LIMIT_0C = H("01 03 02 00 00 B8 44")  # 0.0 degC: the stale frame of the field trial
HOT_RAW = 11269  # 1126.9 degC = 1400.05 K
PV_1400K = 1126.9 + 273.15


def _status(word: int) -> bytes:
    return frame(1, 3, 2, word >> 8, word & 0xFF)


def _ctrl(script, **kw):
    kw.setdefault("turnaround_s", 0.05)
    kw.setdefault("backoff_s", 0.0)
    return expected_protocol(EurothermController, script, **kw)


@pytest.fixture
def peer():
    p = PtyModbusPeer({1: HOT_RAW, 2: HOT_RAW, 75: 0, 112: 0, 35: 100})
    yield p
    p.close()


def _pty_ctrl(peer, timeout_s=0.2, **kw):
    port = serial.serial_for_url(peer.device, timeout=timeout_s)
    kw.setdefault("backoff_s", 0.0)
    return EurothermController(port, timeout_s=timeout_s, **kw)


def _addr(request: bytes) -> int:
    return int.from_bytes(request[2:4], "big")


# -- the stale frame: a late reply must never become the next reading ------------------------
def test_late_reply_to_low_limit_is_not_taken_as_the_temperature(peer):
    """The field trial, with the driver's defaults (timeout 0.2 s, 2 retries): the first
    read of setpoint_low_limit is answered 0.7 s late by a slave that answers in order.
    Before, the retries timed out too and the temperature read that followed got the late
    frame (0.0 degC = 273.15 K) with the furnace at 1400 K."""
    def respond(req, normal):
        late = _addr(req) == 112 and sum(_addr(r) == 112 for r in peer.requests) == 1
        return [(0.7 if late else 0.0, normal)]

    peer.respond = respond
    ctrl = _pty_ctrl(peer, backoff_s=0.02)
    try:
        assert ctrl.setpoint_low_limit == pytest.approx(273.15)  # the retry, after the drain
        assert ctrl.temperature == pytest.approx(PV_1400K)
        assert [_addr(r) for r in peer.requests] == [112, 112, 1, 75]
    finally:
        ctrl.close()


def test_stale_frame_inside_the_next_read_fails_the_block_check(peer):
    """Even with a drain window too short to catch it, a stale single-register frame that
    lands inside the temperature read is refused (byte count 2, not 4), and the retry
    reads the true value."""
    calls = {"pv": 0}

    def respond(req, normal):
        if _addr(req) == 112:
            return [(0.9, normal)]
        if _addr(req) == 1:
            calls["pv"] += 1
            return [(0.4 if calls["pv"] == 1 else 0.0, normal)]  # first one after the stale frame
        return [(0.0, normal)]

    peer.respond = respond
    # timeout 0.6 s: the low limit times out before its reply (0.9 s); the drain ends at
    # 0.65 s; the temperature read then sees the stale frame (0.9 s) followed by its own
    # reply (0.65 + 0.4 s), both inside its 0.6 s window
    ctrl = _pty_ctrl(peer, timeout_s=0.6, retries=0, turnaround_s=0.05)
    try:
        with pytest.raises(InstrumentTimeout):
            ctrl.read("setpoint_low_limit")
        ctrl.retries = 1
        assert ctrl.temperature == pytest.approx(PV_1400K)
        assert calls["pv"] == 2
    finally:
        ctrl.close()


class FakeClock:
    """Injected clock: ``sleep`` advances it, nothing waits."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.t += dt


def _fake_ctrl(script, clock, **kw):
    port = ScriptedPort(script, clock=clock)
    return port, EurothermController(port, backoff_s=0.0, clock=clock, sleep=clock.sleep, **kw)


def test_late_reply_drained_before_next_request_scripted():
    """Byte-exact, on an injected clock: after a timeout the late frame (0.0 degC at
    +0.1 s) is read and discarded, and the next request goes out only once the line has
    been quiet for the turnaround window."""
    clock = FakeClock()
    port, ctrl = _fake_ctrl([(READ_LOW_LIMIT, Late(LOW_LIMIT_0C, 0.1)),
                             (READ_PV_BLOCK, PV_BLOCK_400C), (READ_STATUS, _status(0))],
                            clock, retries=0, turnaround_s=0.15)
    with pytest.raises(InstrumentTimeout):
        ctrl.setpoint_low_limit  # noqa: B018
    assert ctrl.temperature == pytest.approx(673.15)
    assert port.write_times[1] >= 0.1 + 0.15
    port.assert_done()


def test_request_waits_for_a_frame_still_arriving_on_an_idle_line():
    """Half a stray frame in the input buffer and the rest still coming: clearing the
    buffer is not enough; the request waits until the line has been quiet."""
    clock = FakeClock()
    port, ctrl = _fake_ctrl([(READ_PV, PV_400C)], clock, turnaround_s=0.05)
    port._rx += LOW_LIMIT_0C[:3]  # noqa: SLF001 - the stray frame, as the wire delivers it
    port._late.append((0.03, LOW_LIMIT_0C[3:]))  # noqa: SLF001 - the rest, 30 ms later
    assert ctrl.read("process_value") == 400.0
    assert len(port.write_times) == 1 and port.write_times[0] >= 0.03 + 0.05
    port.assert_done()


def test_two_frames_in_one_reply_are_not_trusted():
    """Bytes after a complete reply mean one of the frames is stale: refuse, drain, retry."""
    with _ctrl([(READ_PV, LOW_LIMIT_0C + PV_400C), (READ_PV, PV_400C)]) as ctrl:
        assert ctrl.read("process_value") == 400.0
    with _ctrl([(READ_PV, PV_400C + LOW_LIMIT_0C)] * 3, retries=2) as ctrl:
        with pytest.raises(ProtocolError, match="followed the reply"):
            ctrl.read("process_value")


def test_a_babbling_line_is_bounded():
    class Babbler(ScriptedPort):
        def read(self, size=1):
            return b"\x55"  # never quiet

    port = Babbler([(READ_PV, None)])
    ctrl = EurothermController(port, retries=0, turnaround_s=0.02, drain_max_s=0.1)
    with pytest.raises(ProtocolError):  # noise instead of a reply
        ctrl.read("process_value")
    with pytest.raises(ProtocolError, match="not quiet"):  # the drain gives up, nothing sent
        ctrl.read("process_value")
    assert port.written == [READ_PV]


# -- corrupt frames over a real line --------------------------------------------------------
CORRUPTIONS = {
    "bad_crc": lambda r: r[:-1] + bytes([r[-1] ^ 0xFF]),
    "truncated": lambda r: r[: len(r) // 2],
    "garbage_prefix": lambda r: b"\x00\xff\x13\x37" + r,
    "garbage_only": lambda r: b"\x00\xff\x13\x37\x42\x42\x42",
    "trailing_garbage": lambda r: r + b"\x13\x37",
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_corrupt_reply_then_retry_reads_true_value(peer, kind):
    peer.respond = lambda req, normal: [(0.0, CORRUPTIONS[kind](normal) if len(peer.requests) == 1
                                         else normal)]
    ctrl = _pty_ctrl(peer, retries=2, turnaround_s=0.1)
    try:
        assert ctrl.read("process_value") == pytest.approx(1126.9)
        assert len(peer.requests) == 2
    finally:
        ctrl.close()


@pytest.mark.parametrize(("kind", "error"), [("bad_crc", ChecksumError), ("truncated", ProtocolError),
                                             ("garbage_only", ProtocolError)])
def test_corrupt_replies_exhaust_bounded_retries(peer, kind, error):
    peer.respond = lambda req, normal: [(0.0, CORRUPTIONS[kind](normal))]
    ctrl = _pty_ctrl(peer, retries=1, turnaround_s=0.05)
    try:
        with pytest.raises(error):
            ctrl.read("process_value")
        assert len(peer.requests) == 2
    finally:
        ctrl.close()


def test_port_vanishing_is_connection_lost(peer):
    ctrl = _pty_ctrl(peer, turnaround_s=0.05)
    try:
        assert ctrl.read("process_value") == pytest.approx(1126.9)
        peer.respond = lambda req, normal: PtyModbusPeer.VANISH
        with pytest.raises(ConnectionLost):
            ctrl.read("process_value")
        with pytest.raises(ConnectionLost):  # and stays lost, at once (not a timeout)
            ctrl.temperature  # noqa: B018
    finally:
        ctrl.close()


# -- exception codes ------------------------------------------------------------------------
CODES = [1, 2, 3, 4, 5, 6, 7, 8, 10, 11]


@pytest.mark.parametrize("code", CODES)
def test_exception_code_on_read_typed_and_retried_per_policy(code):
    reply = frame(1, 0x83, code)
    retried = code in (6, 11)  # busy, gateway target did not respond: a read may be repeated
    script = [(READ_PV, reply)] * (3 if retried else 1)
    with _ctrl(script, retries=2) as ctrl, pytest.raises(ModbusExceptionReply) as info:
        ctrl.read("process_value")
    assert info.value.code == code and info.value.register == 1
    assert isinstance(info.value, ModbusAcknowledge) == (code == 5)
    assert MODBUS_EXCEPTIONS[code][0].split(":")[0] in str(info.value)


@pytest.mark.parametrize("code", CODES)
def test_exception_code_on_write_never_retried(code):
    request = H("01 06 00 02 07 D0 2B A6")  # setpoint 200.0 degC
    with _ctrl([(request, frame(1, 0x86, code))]) as ctrl, \
            pytest.raises(ModbusExceptionReply) as info:
        ctrl.setpoint = 473.15
    assert info.value.code == code
    assert "setpoint" not in ctrl.last_sent  # nothing confirmed on the wire


def test_exception_frame_from_another_slave_is_not_believed():
    with _ctrl([(READ_PV, frame(2, 0x83, 2))], retries=0) as ctrl, pytest.raises(ProtocolError):
        ctrl.read("process_value")


# -- readings that cannot be believed -------------------------------------------------------
@pytest.mark.parametrize(("raw", "why"), [(0x8000, "no-value"), (0x4E20, "outside"),  # 2000 degC
                                          (0xF82F, "outside")])  # -200.1 degC
def test_impossible_process_value_raises_not_retried(raw, why):
    with _ctrl([(READ_PV, frame(1, 3, 2, raw >> 8, raw & 0xFF))]) as ctrl:
        with pytest.raises(ImplausibleReading, match=why) as info:
            ctrl.read("process_value")
    assert info.value.quantity == "process_value"


def test_temperature_with_no_value_code_raises():
    with _ctrl([(READ_PV_BLOCK, frame(1, 3, 4, 0x80, 0x00, 0x07, 0xD0))]) as ctrl:
        with pytest.raises(ImplausibleReading):
            ctrl.temperature  # noqa: B018


@pytest.mark.parametrize(("status", "refused"), [(0x0020, True), (0x0400, True), (0x0021, True),
                                                 (0x0001, False), (0x0000, False)])
def test_status_bits_refuse_the_temperature(status, refused):
    """Bit 5 (sensor break) and bit 10 (PV out of range) make the reading unknown; an
    alarm bit alone does not."""
    with _ctrl([(READ_PV_BLOCK, PV_BLOCK_400C), (READ_STATUS, _status(status))]) as ctrl:
        if refused:
            with pytest.raises(ImplausibleReading, match="status bit"):
                ctrl.temperature  # noqa: B018
        else:
            assert ctrl.temperature == pytest.approx(673.15)


def test_implausible_rate_limit_reading():
    with _ctrl([(frame(1, 3, 0, 35, 0, 1), frame(1, 3, 2, 0xFF, 0xFF))]) as ctrl:
        with pytest.raises(ImplausibleReading):
            ctrl.ramp_rate  # noqa: B018


# -- encoding: the raw integer is computed once, never truncated toward danger ---------------
def test_setpoint_1073_19_K_goes_out_as_800_0_and_journals_the_wire_value():
    sent = H("01 06 00 02 1F 40 21 CA")  # raw 8000 = 800.0 degC
    with _ctrl([(sent, sent)]) as ctrl:
        ctrl.setpoint = 1073.19
        assert ctrl.last_sent["setpoint"] == pytest.approx(1073.15, abs=1e-9)
        assert ctrl.quantize("setpoint", 1073.19) == ctrl.last_sent["setpoint"]


def test_float_noise_is_not_truncated_away():
    """1024.35 K - 273.15 = 751.1999999999999 degC: minimalmodbus's int() sent 7511
    (751.1 degC); the value is on the 751.2 step."""
    sent = frame(1, 6, 0, 2, 0x1D, 0x58)  # raw 7512
    with _ctrl([(sent, sent)]) as ctrl:
        ctrl.setpoint = 1024.35
    rate = frame(1, 6, 0, 35, 0, 230)  # 2.30 K/min at 2 decimals: raw 230, not 229
    with _ctrl([(rate, rate)], decimals=2) as ctrl:
        ctrl.ramp_rate = 2.3
        assert ctrl.last_sent["ramp_rate"] == pytest.approx(2.3)


def test_setpoint_rounds_down_never_above_the_request():
    sent = frame(1, 6, 0, 2, 0x1F, 0x3F)  # 799.99 degC -> raw 7999 (799.9), never 8000
    with _ctrl([(sent, sent)]) as ctrl:
        ctrl.setpoint = 1073.14
        assert ctrl.last_sent["setpoint"] <= 1073.14


@pytest.mark.parametrize(("rate", "decimals"), [(0.6, 0), (0.04, 1), (0.099, 1), (0.009, 2)])
def test_nonzero_rate_that_would_be_raw_0_is_refused_unsent(rate, decimals):
    with _ctrl([], decimals=decimals) as ctrl:
        with pytest.raises(ValueError, match="raw 0") as info:
            ctrl.ramp_rate = rate
    assert "setpoint_rate_limit" in str(info.value) and "resolution" in str(info.value)


def test_rate_rounds_down_to_a_slower_ramp():
    sent = frame(1, 6, 0, 35, 0, 1)  # 1.9 K/min at 0 decimals: 1, never 2
    with _ctrl([(sent, sent)], decimals=0) as ctrl:
        ctrl.ramp_rate = 1.9
        assert ctrl.last_sent["ramp_rate"] == 1.0


@pytest.mark.parametrize("value", [10**400, float("nan"), float("inf"), 3500.0, 1e9, "hot"])
def test_unrepresentable_setpoint_refused_unsent(value):
    with _ctrl([]) as ctrl, pytest.raises(ValueError):
        ctrl.setpoint = value


def test_encode_decode_round_trip_every_register():
    for reg in EUROTHERM_REGISTERS.values():
        for dec in (0, 1, 2):
            low, high = reg.valid
            for value in (low, high, (low + high) / 2):
                try:
                    raw = encode(reg, value, dec)
                except ValueError:
                    continue  # not representable at this resolution (e.g. 1820 degC at 2 dec)
                assert abs(decode(reg, raw, dec) - value) <= resolution(reg, dec) + 1e-9


# -- the acceptance: a 0.5 s client and a freshly started `synthgap emulate furnace` ---------
def test_plain_minimalmodbus_first_request_to_fresh_emulator_cli():
    with subprocess.Popen(
            [sys.executable, "-m", "synthgap.experiments.cli", "emulate", "furnace", "--duration", "20"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        try:
            line = proc.stdout.readline().split()
            assert line[0] == "furnace", line
            inst = minimalmodbus.Instrument(line[1], 1)
            try:
                inst.serial.timeout = 0.5
                value = inst.read_register(1, 1, functioncode=3, signed=True)  # the first request
            finally:
                inst.serial.close()
            assert 15.0 < value < 40.0  # degC, an ambient furnace
        finally:
            proc.terminate()
            proc.wait(timeout=5)


def test_emulator_physics_compiled_before_start_returns():
    code = ("from synthgap.hardware.emulators import FurnaceEmulator\n"
            "from synthgap.envs.lab import thermal\n"
            "e = FurnaceEmulator(); e.start()\n"
            "print(len(thermal._simulate.signatures), len(thermal._check_steps.signatures))\n"
            "e.stop()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.split() == ["1", "1"], out.stderr[-500:]
