"""End-to-end over real pseudo-terminals: drivers against the protocol emulators."""

from __future__ import annotations

import argparse
import io
import threading
import time

import numpy as np
import pytest
import serial

from synthgap.envs.lab.thermal import FurnaceParams
from synthgap.hardware.balance import MTSICSBalance
from synthgap.hardware.config import SafetyLimits
from synthgap.hardware.emulators import BalanceEmulator, Fault, FurnaceEmulator, StationEmulator
from synthgap.hardware.emulators.cli import add_emulate_parser, run_emulate
from synthgap.hardware.errors import (
    BalanceBusy,
    BalanceOverload,
    BalanceSyntaxError,
    ConnectionLost,
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
    ctrl = EurothermController(port, timeout_s=0.2, backoff_s=0.0)
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
                                   Fault.TRUNCATED])
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
