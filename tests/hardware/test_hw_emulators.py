"""End-to-end over real pseudo-terminals: drivers against the protocol emulators."""

from __future__ import annotations

import argparse
import io
import os
import threading
import time
from pathlib import Path

import minimalmodbus
import numpy as np
import pytest
import serial

from synthgap.envs.lab.thermal import FurnaceParams
from synthgap.hardware.balance import MTSICSBalance
from synthgap.hardware.config import SafetyLimits
from synthgap.hardware.emulators import BalanceEmulator, Fault, FurnaceEmulator, StationEmulator
from synthgap.hardware.emulators.cli import add_emulate_parser, run_emulate
from synthgap.hardware.emulators.furnace import crc16
from synthgap.hardware.errors import (
    BalanceBusy,
    BalanceOverload,
    BalanceSyntaxError,
    ConnectionLost,
    ImplausibleReading,
    InstrumentTimeout,
    ModbusAcknowledge,
    ModbusExceptionReply,
    SafetyViolation,
    StationError,
)
from synthgap.hardware.eurotherm import EurothermController
from synthgap.hardware.shield import SafetyShield
from synthgap.hardware.stations import Mill, RobotArm


@pytest.fixture
def furnace():
    emu = FurnaceEmulator(FurnaceParams(tau_s=20.0, noise_K=0.1), np.random.default_rng(1),
                          time_scale=1.0)
    emu.start()
    port = serial.serial_for_url(emu.device, timeout=0.2)
    # the emulator answers in ms; a 0.3 s drain window keeps the fault tests fast
    ctrl = EurothermController(port, timeout_s=0.2, backoff_s=0.0, turnaround_s=0.3)
    yield emu, ctrl
    port.close()
    emu.stop()


def test_furnace_heats_toward_setpoint(furnace):
    emu, ctrl = furnace
    assert ctrl.temperature == pytest.approx(298.15 + 3.0, abs=1.0)
    ctrl.setpoint = 873.15
    assert ctrl.setpoint == pytest.approx(873.15)
    emu.advance(30.0)  # 1.5 tau of simulated time
    mid = ctrl.temperature
    assert 400.0 < mid < 873.15
    emu.advance(600.0)
    assert ctrl.temperature == pytest.approx(873.15, abs=1.0)
    assert ctrl.working_setpoint == pytest.approx(873.15)


def test_furnace_real_time_scaling_and_ramp(furnace):
    emu, ctrl = furnace
    emu.time_scale = 600.0  # 10 simulated minutes per wall second
    ctrl.ramp_rate = 100.0  # K/min
    ctrl.setpoint = 673.15
    time.sleep(0.3)  # ~180 s simulated: working setpoint ramped ~300 K, then capped
    assert ctrl.working_setpoint == pytest.approx(673.15, abs=130.0)
    assert ctrl.temperature > 320.0
    assert 0.0 <= ctrl.output_power <= 100.0


@pytest.mark.parametrize("fault", [Fault.NO_REPLY, Fault.BAD_CRC, Fault.GARBAGE_PREFIX,
                                   Fault.TRUNCATED, Fault.GARBAGE_ONLY, Fault.TRAILING_GARBAGE])
def test_furnace_fault_then_retry_succeeds(furnace, fault):
    emu, ctrl = furnace
    emu.inject(fault)
    assert ctrl.temperature == pytest.approx(301.15, abs=1.0)
    assert not emu.faults


def test_furnace_exception_replies(furnace):
    emu, ctrl = furnace
    emu.inject(Fault.EXCEPTION_REPLY)
    with pytest.raises(ModbusExceptionReply) as info:
        ctrl.temperature  # noqa: B018
    assert info.value.code == 4
    ctrl.setpoint_high_limit = 773.15
    with pytest.raises(ModbusExceptionReply) as info:
        ctrl.setpoint = 873.15  # above the programmed high limit: illegal data value
    assert info.value.code == 3


@pytest.mark.parametrize("code", [5, 10, 11])
def test_furnace_injected_exception_codes(furnace, code):
    """Codes 10 and 11 used to come out as 4 and code 5 as a retried protocol error."""
    emu, ctrl = furnace
    emu.inject(Fault.EXCEPTION_REPLY, count=3, code=code)
    with pytest.raises(ModbusExceptionReply) as info:
        ctrl.read("process_value")
    assert info.value.code == code
    assert isinstance(info.value, ModbusAcknowledge) == (code == 5)
    assert len(emu.faults) == (0 if code == 11 else 2)  # only 11 (gateway timeout) is retried
    emu.faults.clear()


def test_furnace_late_reply_is_drained_not_believed(furnace):
    """The stale-frame case through the emulator: a 0.7 s late reply to the low limit."""
    emu, ctrl = furnace
    ctrl.setpoint_high_limit = 1273.15
    ctrl.setpoint = 1273.15
    emu.advance(3600.0)
    emu.values["setpoint_low_limit"] = 0.0
    emu.inject(Fault.LATE_REPLY, delay_s=0.7)
    ctrl.retries = 0
    with pytest.raises(InstrumentTimeout):
        ctrl.setpoint_low_limit  # noqa: B018
    assert ctrl.temperature == pytest.approx(1273.15, abs=2.0)  # the late 0.0 degC never shows


class _Robot:
    def __init__(self):
        self.moves = []

    def move(self, source, destination):
        self.moves.append((source, destination))

    def stop(self):
        pass


def test_the_trial_case_late_reply_then_a_move_out_of_a_hot_furnace_is_refused(furnace, tmp_path):
    """The trial's case end to end (real driver, shield, emulator on a pty): a late reply to
    the low-limit read must not open the interlock of a furnace at 1273 K; a sensor break
    keeps it shut too, and both refusals are journaled."""
    from synthgap.hardware.journal import Journal, read_journal

    emu, ctrl = furnace
    ctrl.setpoint_high_limit = 1273.15
    ctrl.setpoint = 1273.15
    emu.advance(3600.0)
    emu.values["setpoint_low_limit"] = 0.0
    limits = SafetyLimits(max_temperature_K=1273.15, max_ramp_rate_K_per_min=20.0, max_dwell_h=10.0,
                          max_mass_g=20.0, safe_temperature_K=323.15)
    robot = _Robot()
    with Journal(tmp_path / "j.jsonl", fsync=False) as journal:
        shield = SafetyShield(ctrl, limits, journal, robot=robot)
        emu.inject(Fault.LATE_REPLY, delay_s=0.7)
        ctrl.retries = 0
        with pytest.raises(InstrumentTimeout):
            ctrl.setpoint_low_limit  # noqa: B018
        with pytest.raises(SafetyViolation, match="interlock: FURNACE1"):
            shield.move_sample("FURNACE1", "XRD1")
        emu.sensor_break = True
        with pytest.raises(SafetyViolation, match="temperature unknown"):
            shield.move_sample("FURNACE1", "XRD1")
    assert robot.moves == []
    refused = [e for e in read_journal(tmp_path / "j.jsonl").events if e["event"] == "refused"]
    assert [e["command"] for e in refused] == ["move_sample", "move_sample"]


def test_furnace_sensor_break_makes_temperature_unknown(furnace):
    emu, ctrl = furnace
    emu.sensor_break = True
    with pytest.raises(ImplausibleReading, match="no-value"):
        ctrl.temperature  # noqa: B018
    assert ctrl.status_word & 0x20
    emu.sensor_break = False
    assert ctrl.temperature == pytest.approx(301.15, abs=1.0)


def _frame(*body: int) -> bytes:
    return bytes(body) + crc16(bytes(body))


@pytest.fixture
def raw_line(furnace):
    emu, ctrl = furnace

    def transact(request: bytes, expect: int = 64) -> bytes:
        ctrl.port.reset_input_buffer()
        ctrl.port.write(request)
        return ctrl.port.read(expect)  # returns after 0.2 s when fewer bytes come

    return emu, transact


def test_furnace_function_code_4_reads_like_3(furnace):
    emu, ctrl = furnace
    inst = minimalmodbus.Instrument(ctrl.port, 1)
    fc3 = inst.read_register(2, 1, functioncode=3, signed=True)
    assert inst.read_register(2, 1, functioncode=4, signed=True) == fc3 == pytest.approx(25.0)
    assert inst.read_registers(1, 2, functioncode=4)[1] == 250


def test_furnace_broadcast_write_applied_without_reply_and_read_ignored(raw_line):
    emu, transact = raw_line
    assert transact(_frame(0, 6, 0, 2, 0x07, 0xD0)) == b""  # setpoint 200.0 degC, no reply
    assert emu.values["target_setpoint"] == 200.0
    assert transact(_frame(0, 16, 0, 35, 0, 1, 2, 0, 50)) == b""  # fc 16: rate 5.0 degC/min
    assert emu.values["setpoint_rate_limit"] == 5.0
    assert transact(_frame(0, 3, 0, 1, 0, 1)) == b""  # a broadcast read is ignored
    assert transact(_frame(0, 6, 0, 35, 0xFF, 0xFF)) == b""  # refused silently
    assert emu.values["setpoint_rate_limit"] == 5.0


@pytest.mark.parametrize(("address", "raw", "code"), [
    (35, 0xFFFF, 3),  # rate limit 6553.5 degC/min (was accepted)
    (35, 10000, 3),  # 1000.0 degC/min: above the valid range
    (2, 0x8000, 3),  # the no-value code as a setpoint
    (2, 14000, 3),  # 1400.0 degC: above the 1273.15 K high limit set below
    (111, 16000, 3),  # high limit 1600 degC: above the furnace maximum (1500 degC)
    (111, 0xFF9C, 3),  # high limit -10.0 degC: below the low limit
    (112, 12800, 3),  # low limit 1280 degC: above the high limit
    (112, 0xF000, 3),  # low limit -409.6 degC: below any thermocouple
    (1, 100, 2),  # process value: read-only
    (4, 0, 2),  # no such register
])
def test_furnace_refuses_every_out_of_limit_write(raw_line, address, raw, code):
    emu, transact = raw_line
    emu.values["setpoint_high_limit"] = 1000.0
    before = dict(emu.values)
    reply = transact(_frame(1, 6, address >> 8, address & 0xFF, raw >> 8, raw & 0xFF))
    assert reply == _frame(1, 0x86, code)
    assert emu.values == before


def test_furnace_read_count_limits(raw_line):
    emu, transact = raw_line
    assert transact(_frame(1, 3, 0, 1, 0, 0)) == _frame(1, 0x83, 3)  # count 0
    assert transact(_frame(1, 4, 0, 1, 0, 126)) == _frame(1, 0x84, 3)  # count 126 > 125
    assert transact(_frame(1, 5, 0, 1, 0xFF, 0)) == _frame(1, 0x85, 1)  # fc 5: illegal function


def test_furnace_port_closing_mid_session(furnace):
    emu, ctrl = furnace
    ctrl.temperature  # noqa: B018
    emu.inject(Fault.CLOSE_PORT)
    with pytest.raises(ConnectionLost):
        ctrl.temperature  # noqa: B018
    with pytest.raises(ConnectionLost):
        ctrl.temperature  # noqa: B018


def test_shield_over_emulated_furnace(furnace):
    emu, ctrl = furnace
    limits = SafetyLimits(max_temperature_K=1273.15, max_ramp_rate_K_per_min=20.0,
                          max_dwell_h=10.0, max_mass_g=20.0, safe_temperature_K=323.15)
    shield = SafetyShield(ctrl, limits)
    shield.connect()
    assert ctrl.setpoint_high_limit == pytest.approx(1273.15)
    assert ctrl.setpoint_low_limit == pytest.approx(273.15)
    assert ctrl.ramp_rate == pytest.approx(20.0)
    with pytest.raises(SafetyViolation):
        shield.set_setpoint(1300.0)
    shield.set_setpoint(1000.0)
    shield.emergency_stop("test")
    assert ctrl.setpoint == pytest.approx(323.15)


@pytest.fixture
def balance():
    emu = BalanceEmulator(true_mass_g=12.3456, noise_g=0.0, capacity_g=100.0)
    emu.start()
    port = serial.serial_for_url(emu.device, timeout=0.2)
    bal = MTSICSBalance(port, timeout_s=0.2, backoff_s=0.0)
    yield emu, bal
    port.close()
    emu.stop()


def test_balance_end_to_end(balance):
    emu, bal = balance
    assert bal.reset() == "B000000001"
    assert bal.stable_mass().mass == pytest.approx(12.3456)
    assert bal.tare() == pytest.approx(12.3456)
    emu.true_mass_g = 15.0
    assert bal.immediate_mass().mass == pytest.approx(2.6544)
    bal.zero()
    assert bal.stable_mass().mass == pytest.approx(0.0)
    emu.true_mass_g = 500.0
    with pytest.raises(BalanceOverload):
        bal.stable_mass()


def test_balance_faults(balance):
    emu, bal = balance
    for fault in (Fault.NO_REPLY, Fault.BAD_CRC, Fault.GARBAGE_PREFIX, Fault.TRUNCATED):
        emu.inject(fault)
        assert bal.stable_mass().mass == pytest.approx(12.3456)
    emu.inject(Fault.EXCEPTION_REPLY)
    with pytest.raises(BalanceBusy):
        bal.stable_mass()
    assert bal._io.transact("XYZ") == "ES"
    with pytest.raises(BalanceSyntaxError):
        MTSICSBalance._raise_for_error("XYZ", "ES")
    emu.inject(Fault.CLOSE_PORT)
    with pytest.raises(ConnectionLost):
        bal.stable_mass()


def test_stations_end_to_end():
    with StationEmulator("mill") as mill_emu, StationEmulator("robot") as robot_emu:
        mill_port = serial.serial_for_url(mill_emu.device, timeout=0.5)
        robot_port = serial.serial_for_url(robot_emu.device, timeout=0.5)
        try:
            mill, robot = Mill(mill_port, timeout_s=0.5), RobotArm(robot_port, timeout_s=0.5)
            mill.mill(400, 900)
            assert mill_emu.executed == ["MILL 400 900"]
            assert mill.status() == "IDLE" and mill.identify().startswith("EMU-MILL")
            robot.move("RACK_A1", "FURNACE1")
            with pytest.raises(StationError) as info:
                mill.command("HOME")
            assert info.value.code == 1
            robot_emu.inject(Fault.EXCEPTION_REPLY)
            with pytest.raises(StationError):
                robot.home()
        finally:
            mill_port.close()
            robot_port.close()


def test_emulate_cli_prints_devices_and_stops():
    top = argparse.ArgumentParser(prog="synthgap")
    add_emulate_parser(top.add_subparsers(dest="command"))
    args = top.parse_args(["emulate", "lab", "--time-scale", "60", "--slave", "2"])
    stop, out = threading.Event(), io.StringIO()
    thread = threading.Thread(target=run_emulate, args=(args, stop, out))
    thread.start()
    try:
        deadline = time.monotonic() + 3.0
        while out.getvalue().count("\n") < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        devices = dict(line.split() for line in out.getvalue().splitlines())
        assert set(devices) == {"furnace", "balance", "mill", "press", "robot"}
        port = serial.serial_for_url(devices["furnace"], timeout=0.2)
        try:
            ctrl = EurothermController(port, slave=2, backoff_s=0.0)
            assert 290.0 < ctrl.temperature < 320.0
        finally:
            port.close()
    finally:
        stop.set()
        thread.join(timeout=3.0)
    assert not thread.is_alive()


def test_emulate_main_standalone(capsys):
    from synthgap.hardware.emulators.cli import emulate_main

    assert emulate_main(["balance", "--mass", "5", "--duration", "0.05"]) == 0
    assert capsys.readouterr().out.startswith("balance /dev/")


def test_emulate_lab_writes_a_lab_file_whose_clock_finishes_a_deploy_in_minutes(tmp_path):
    from synthgap.hardware.config import load_lab_file
    from synthgap.hardware.emulators.cli import LAB_TIME_SCALE

    top = argparse.ArgumentParser(prog="synthgap")
    add_emulate_parser(top.add_subparsers(dest="command"))
    args = top.parse_args(["emulate", "lab", "--workdir", str(tmp_path), "--duration", "0.5"])
    out = io.StringIO()
    assert run_emulate(args, threading.Event(), out) == 0
    printed = dict(line.split() for line in out.getvalue().splitlines())
    assert float(printed["time-scale"]) == LAB_TIME_SCALE == 3600.0  # an hour of milling in one wall second
    _, settings = load_lab_file(printed["lab-file"])
    assert settings.time_scale == LAB_TIME_SCALE
    single = top.parse_args(["emulate", "furnace"])
    assert single.time_scale is None  # one device: real speed unless asked (resolved when it starts)


def test_emulate_lab_json_then_exit_leaves_no_device_links_behind(tmp_path):
    """--json prints one object; on exit the links are gone, so a stale lab file reaches no reused pty."""
    import json

    from synthgap.envs.userfiles import ConfigError
    from synthgap.hardware.config import load_lab_file
    from synthgap.hardware.lab import HardwareLab

    top = argparse.ArgumentParser(prog="synthgap")
    add_emulate_parser(top.add_subparsers(dest="command"))
    args = top.parse_args(["emulate", "lab", "--workdir", str(tmp_path), "--duration", "0.3", "--json"])
    out = io.StringIO()
    assert run_emulate(args, threading.Event(), out) == 0
    (line,) = out.getvalue().splitlines()
    printed = json.loads(line)
    assert set(printed["devices"]) == {"furnace", "balance", "mill", "press", "robot"}
    assert printed["time_scale"] == 3600.0 and Path(printed["lab_file"]).is_file()
    assert not any(os.path.lexists(p) for p in printed["devices"].values())  # links removed on exit
    config, settings = load_lab_file(printed["lab_file"])
    with pytest.raises(ConfigError, match=r"furnace: cannot open .*dev/furnace: no such device \(is the "
                                          r"instrument connected, or `synthgap emulate lab` still running"):
        HardwareLab(config, settings, journal=tmp_path / "j.jsonl")  # the stale file opens nothing


def test_emulate_single_device_json(capsys):
    import json

    from synthgap.hardware.emulators.cli import emulate_main

    assert emulate_main(["balance", "--duration", "0.05", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["devices"]["balance"].startswith("/dev/") and printed["time_scale"] == 1.0
