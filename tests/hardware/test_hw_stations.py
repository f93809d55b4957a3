"""Line-protocol stations (scripted port) and the XRD folder driver."""

from __future__ import annotations

import json
import threading

import pytest

from synthgap.hardware.errors import InstrumentError, InstrumentTimeout, ProtocolError, StationError
from synthgap.hardware.stations import Mill, Press, RobotArm
from synthgap.hardware.testing import expected_protocol
from synthgap.hardware.xrd import XRDFolderDriver, write_json_atomic


def test_mill_press_robot_exact_lines():
    with expected_protocol(Mill, [(b"MILL 300 600\r\n", b"OK\r\n"),
                                  (b"STATUS?\r\n", b"OK BUSY\r\n")]) as mill:
        mill.mill(300, 600.0)
        assert mill.status() == "BUSY"
    with expected_protocol(Press, [(b"PRESS 10.5 60\r\n", b"OK\r\n")]) as press:
        press.press(10.5, 60)
    with expected_protocol(RobotArm, [(b"MOVE RACK_A1 FURNACE1\r\n", b"OK\r\n"),
                                      (b"ID?\r\n", b"OK ARM-6 0042\r\n"),
                                      (b"HOME\r\n", b"OK\r\n")]) as robot:
        robot.move("RACK_A1", "FURNACE1")
        assert robot.identify() == "ARM-6 0042"
        robot.home()


def test_err_reply_raises_station_error():
    with expected_protocol(Mill, [(b"MILL 300 10\r\n", b"ERR 3 busy milling\r\n")]) as mill:
        with pytest.raises(StationError) as info:
            mill.mill(300, 10)
    assert info.value.code == 3 and info.value.text == "busy milling"


def test_unexpected_reply_and_timeout():
    with expected_protocol(Press, [(b"STOP\r\n", b"HUH\r\n"), (b"STOP\r\n", None)]) as press:
        with pytest.raises(ProtocolError):
            press.stop()
        with pytest.raises(InstrumentTimeout):
            press.stop()


@pytest.mark.parametrize(("method", "args"), [
    ("mill", (float("nan"), 10)), ("mill", (0, 10)), ("mill", (5000, 10)),
    ("mill", (300, float("inf"))), ("mill", (300, -1)),
])
def test_mill_validators_raise(method, args):
    with expected_protocol(Mill, []) as mill, pytest.raises(ValueError):
        getattr(mill, method)(*args)


@pytest.mark.parametrize(("src", "dst"), [("rack", "FURNACE1"), ("A", "A"), ("A B", "C"),
                                          (None, "A")])
def test_robot_location_validator(src, dst):
    with expected_protocol(RobotArm, []) as robot, pytest.raises(ValueError):
        robot.move(src, dst)


# -- XRD -------------------------------------------------------------------------------
def _answer(driver, payload_for):
    """Background 'instrument': answers the first request that appears."""
    def run():
        for _ in range(200):
            requests = list(driver.inbox.glob("*.request.json"))
            if requests:
                req = json.loads(requests[0].read_text())
                write_json_atomic(driver.outbox / f"{req['request_id']}.result.json",
                                  payload_for(req))
                return
            threading.Event().wait(0.005)
    t = threading.Thread(target=run)
    t.start()
    return t


def _xrd(tmp_path, **kw):
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    return XRDFolderDriver(tmp_path / "in", tmp_path / "out", poll_s=0.005, **kw)


def test_xrd_round_trip(tmp_path):
    xrd = _xrd(tmp_path, timeout_s=2.0)
    t = _answer(xrd, lambda r: {"request_id": r["request_id"],
                                "phase_fractions": {"LiMn2O4": 0.9, "Mn3O4": 0.1}})
    assert xrd.measure("S1") == {"LiMn2O4": 0.9, "Mn3O4": 0.1}
    t.join()


@pytest.mark.parametrize(("payload", "error"), [
    ({"phase_fractions": {"A": 0.5}}, ProtocolError),
    ({"phase_fractions": {"A": 1.5}}, ProtocolError),
    ({"error": "tube arc"}, InstrumentError),
])
def test_xrd_bad_results(tmp_path, payload, error):
    xrd = _xrd(tmp_path, timeout_s=2.0)
    t = _answer(xrd, lambda r: {"request_id": r["request_id"], **payload})
    with pytest.raises(error):
        xrd.measure("S2")
    t.join()


def test_xrd_timeout_and_validation(tmp_path):
    xrd = _xrd(tmp_path, timeout_s=0.05)
    with pytest.raises(InstrumentTimeout):
        xrd.measure("S3")
    with pytest.raises(ValueError):
        xrd.submit("S4", two_theta=(80, 10))
