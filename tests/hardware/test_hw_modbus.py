"""Byte-exact Modbus RTU tests of the Eurotherm driver against a scripted port."""

from __future__ import annotations

import pytest

from synthgap.hardware.emulators.furnace import crc16
from synthgap.hardware.errors import (
    ChecksumError,
    ConnectionLost,
    InstrumentTimeout,
    ModbusExceptionReply,
    ProtocolError,
)
from synthgap.hardware.eurotherm import EurothermController
from synthgap.hardware.registers import EUROTHERM_REGISTERS
from synthgap.hardware.testing import ScriptedPort, expected_protocol

H = bytes.fromhex
READ_PV = H("01 03 00 01 00 01 D5 CA")  # slave 1, fc 3, register 1, count 1
PV_400C = H("01 03 02 0F A0 BD CC")  # 4000 -> 400.0 degC
READ_PV_BLOCK = H("01 03 00 01 00 02 95 CB")  # registers 1-2: process value, target setpoint
PV_BLOCK_400C = H("01 03 04 0F A0 07 D0 FA A9")  # 400.0 degC, setpoint 200.0 degC
READ_STATUS = H("01 03 00 4B 00 01 F4 1C")  # register 75
STATUS_OK = H("01 03 02 00 00 B8 44")


def _ctrl(script, **kw):
    kw.setdefault("turnaround_s", 0.05)  # drains after faults stay short in tests
    return expected_protocol(EurothermController, script, backoff_s=0.0, **kw)


def test_crc_matches_reference_frame():
    assert crc16(H("01 03 00 01 00 01")) == H("D5 CA")


def test_read_process_value_exact_bytes_and_kelvin():
    # the temperature is a 2-register block (no single-register reply can pass for it)
    # followed by the status word (sensor break)
    with _ctrl([(READ_PV_BLOCK, PV_BLOCK_400C), (READ_STATUS, STATUS_OK)]) as ctrl:
        assert ctrl.temperature == pytest.approx(673.15)
    with _ctrl([(READ_PV, PV_400C)]) as ctrl:
        assert ctrl.read("process_value") == pytest.approx(400.0)


def test_read_negative_value_signed():
    with _ctrl([(READ_PV, H("01 03 02 FF 9C F9 DD"))]) as ctrl:  # -100 -> -10.0 degC
        assert ctrl.read("process_value") == pytest.approx(-10.0)


def test_read_setpoint_register_2():
    with _ctrl([(H("01 03 00 02 00 01 25 CA"), H("01 03 02 07 D0 BB E8"))]) as ctrl:
        assert ctrl.setpoint == pytest.approx(473.15)


def test_read_status_word_raw():
    with _ctrl([(H("01 03 00 4B 00 01 F4 1C"), H("01 03 02 00 25 79 9F"))]) as ctrl:
        assert ctrl.status_word == 0x25


def test_write_setpoint_exact_frame():
    frame = H("01 06 00 02 07 D0 2B A6")  # 200.0 degC = 473.15 K
    with _ctrl([(frame, frame)]) as ctrl:
        ctrl.setpoint = 473.15


def test_write_ramp_rate_and_high_limit_frames():
    rate = H("01 06 00 23 00 64 79 EB")  # register 35 = 10.0 degC/min
    high = H("01 06 00 6F 0F A0 BC 5F")  # register 111 = 400.0 degC
    with _ctrl([(rate, rate), (high, high)]) as ctrl:
        ctrl.ramp_rate = 10.0
        ctrl.setpoint_high_limit = 673.15


def test_other_slave_and_decimals():
    # (was 0x9C40 = -255.36 degC: below the valid -200 degC, now an ImplausibleReading)
    req = bytes([7, 3, 0, 1, 0, 1])
    reply = bytes([7, 3, 2, 0xF8, 0x30])  # 0xF830 signed = -2000 -> -20.00 degC
    with _ctrl([(req + crc16(req), reply + crc16(reply))], slave=7, decimals=2) as ctrl:
        assert ctrl.read("process_value") == pytest.approx(-20.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, 1e9, "hot", None])
def test_setpoint_validator_raises_without_sending(bad):
    with _ctrl([]) as ctrl, pytest.raises(ValueError):
        ctrl.setpoint = bad


def test_negative_ramp_and_readonly_write_rejected():
    with _ctrl([]) as ctrl:
        with pytest.raises(ValueError):
            ctrl.ramp_rate = -1.0
        with pytest.raises(ValueError, match="read-only"):
            ctrl.write("process_value", 10.0)


def test_register_map_is_the_single_source():
    addresses = {r.name: r.address for r in EUROTHERM_REGISTERS.values()}
    assert addresses == {
        "process_value": 1, "target_setpoint": 2, "output_power": 3, "working_setpoint": 5,
        "programme_status": 23, "setpoint_rate_limit": 35, "status_word": 75,
        "setpoint_high_limit": 111, "setpoint_low_limit": 112}


# -- faults --------------------------------------------------------------------------------
BAD_CRC = PV_400C[:-1] + b"\x00"


@pytest.mark.parametrize("first_reply", [
    None,  # timeout
    BAD_CRC,
    b"\xff\x00" + PV_400C,  # garbage before the frame
    PV_400C[:4],  # truncated
], ids=["timeout", "bad_crc", "garbage", "truncated"])
def test_read_fault_then_successful_retry(first_reply):
    with _ctrl([(READ_PV, first_reply), (READ_PV, PV_400C)]) as ctrl:
        assert ctrl.read("process_value") == pytest.approx(400.0)


@pytest.mark.parametrize(("reply", "error"), [
    (None, InstrumentTimeout),
    (BAD_CRC, ChecksumError),
    (PV_400C[:4], ProtocolError),
])
def test_read_fault_exhausts_bounded_retries(reply, error):
    with _ctrl([(READ_PV, reply)] * 3, retries=2) as ctrl, pytest.raises(error):
        ctrl.read("process_value")


def test_exception_reply_not_retried():
    with _ctrl([(READ_PV, H("01 83 02 C0 F1"))]) as ctrl:
        with pytest.raises(ModbusExceptionReply) as info:
            ctrl.read("process_value")
    assert info.value.code == 2 and info.value.register == 1


def test_write_not_retried_on_timeout():
    frame = H("01 06 00 02 07 D0 2B A6")
    with _ctrl([(frame, None)]) as ctrl, pytest.raises(InstrumentTimeout):
        ctrl.setpoint = 473.15


def test_port_vanishing_is_connection_lost():
    port = ScriptedPort([(READ_PV, ScriptedPort.VANISH)])
    ctrl = EurothermController(port, backoff_s=0.0)
    with pytest.raises(ConnectionLost):
        ctrl.read("process_value")
    port.assert_done()
