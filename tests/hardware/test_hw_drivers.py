"""The drivers satisfy the Protocols the shield and the lab are written against.

Checked by member name AND call signature (``inspect.signature``): ``runtime_checkable``
would only check names, so a driver whose ``mill(duration_s, rpm)`` swapped its arguments
would pass it.
"""

from __future__ import annotations

import inspect
import math
from typing import Protocol

import pytest

from synthgap.hardware import drivers
from synthgap.hardware.balance import MTSICSBalance
from synthgap.hardware.eurotherm import EurothermController
from synthgap.hardware.stations import Mill, Press, RobotArm
from synthgap.hardware.xrd import XRDFolderDriver

SATISFIES = [
    (EurothermController, drivers.FurnaceDriver),
    (EurothermController, drivers.QuantizingFurnace),
    (RobotArm, drivers.RobotDriver),
    (RobotArm, drivers.DosingRobot),
    (Mill, drivers.MillDriver),
    (Press, drivers.PressDriver),
    (Mill, drivers.PolledStation),
    (Press, drivers.PolledStation),
    (MTSICSBalance, drivers.BalanceDriver),
    (XRDFolderDriver, drivers.XRDDriver),
]


def protocol_members(protocol: type) -> dict[str, object]:
    """Public members a Protocol declares, its protocol bases' included."""
    members: dict[str, object] = {}
    for klass in reversed(protocol.__mro__):
        if klass in (object, Protocol) or not getattr(klass, "_is_protocol", False):
            continue
        members.update({k: v for k, v in vars(klass).items() if not k.startswith("_")})
    return members


def _signature(func: object) -> inspect.Signature:
    return inspect.signature(func, eval_str=True)  # annotations compared as types, not text


def signature_problems(where: str, wanted: object, got: object) -> list[str]:
    """Why ``got`` cannot be called as ``wanted`` is (empty if it can): the same parameters
    in the same order, names, kinds and annotations; extra ones only with defaults; the same
    return annotation."""
    want, have = _signature(wanted), _signature(got)
    w, h = list(want.parameters.values()), list(have.parameters.values())
    out = []
    for i, p in enumerate(w):
        if i >= len(h):
            out.append(f"{where}: missing parameter {p.name!r}")
            continue
        q = h[i]
        if (q.name, q.kind, q.annotation) != (p.name, p.kind, p.annotation):
            out.append(f"{where}: parameter {i} is {q} (expected {p})")
    for q in h[len(w):]:
        if q.default is inspect.Parameter.empty and q.kind not in (q.VAR_POSITIONAL, q.VAR_KEYWORD):
            out.append(f"{where}: extra parameter {q.name!r} without a default")
    if have.return_annotation != want.return_annotation:
        out.append(f"{where}: returns {have.return_annotation!r} (expected {want.return_annotation!r})")
    return out


def conformance_problems(cls: type, protocol: type) -> list[str]:
    """Every way ``cls`` fails to satisfy ``protocol`` (empty if it does)."""
    out = []
    for name, wanted in protocol_members(protocol).items():
        where = f"{cls.__name__}.{name}"
        try:
            got = inspect.getattr_static(cls, name)
        except AttributeError:
            out.append(f"{where}: missing")
            continue
        if isinstance(wanted, property):
            if not isinstance(got, property):
                out.append(f"{where}: not a property")
                continue
            out += signature_problems(f"{where} (get)", wanted.fget, got.fget)
            if wanted.fset is not None:
                if got.fset is None:
                    out.append(f"{where}: read-only (the protocol sets it)")
                else:
                    out += signature_problems(f"{where} (set)", wanted.fset, got.fset)
        elif inspect.isfunction(wanted):
            if not inspect.isfunction(got):
                out.append(f"{where}: not a method")
                continue
            out += signature_problems(where, wanted, got)
    return out


@pytest.mark.parametrize(("cls", "protocol"), SATISFIES, ids=lambda x: x.__name__)
def test_driver_satisfies_protocol(cls, protocol):
    assert protocol_members(protocol), f"{protocol.__name__} declares nothing"
    assert conformance_problems(cls, protocol) == []


def test_every_protocol_is_checked_against_a_driver():
    protocols = {v for v in vars(drivers).values()
                 if isinstance(v, type) and getattr(v, "_is_protocol", False) and v.__module__ == drivers.__name__}
    assert protocols - {p for _, p in SATISFIES} <= {drivers.StationDriver}  # a base only


class _SwappedMill:
    def stop(self) -> None: ...
    def mill(self, duration_s: float, rpm: float) -> None: ...


class _MillWithoutStop:
    def mill(self, rpm: float, duration_s: float) -> None: ...


class _MillNeedsMore:
    def stop(self) -> None: ...
    def mill(self, rpm: float, duration_s: float, direction: str) -> None: ...


class _MillInMinutes:
    def stop(self) -> None: ...
    def mill(self, rpm: float, duration_s: int) -> None: ...


class _ReadOnlySetpoint:
    @property
    def setpoint(self) -> float: ...


class _StatusAsText:
    def status(self) -> str: ...


class _StatusAsProperty:
    @property
    def status(self) -> drivers.StationStatus: ...


@pytest.mark.parametrize(("cls", "protocol", "problem"), [
    (_SwappedMill, drivers.MillDriver, "parameter 1 is duration_s"),
    (_MillWithoutStop, drivers.MillDriver, "stop: missing"),
    (_MillNeedsMore, drivers.MillDriver, "extra parameter 'direction' without a default"),
    (_MillInMinutes, drivers.MillDriver, "parameter 2 is duration_s: int"),
    (_ReadOnlySetpoint, drivers.FurnaceDriver, "temperature: missing"),
    (_ReadOnlySetpoint, drivers.FurnaceDriver, "setpoint: read-only"),
    (_StatusAsText, drivers.PolledStation, "returns <class 'str'>"),
    (_StatusAsProperty, drivers.PolledStation, "status: not a method"),
])
def test_the_check_catches_a_wrong_driver(cls, protocol, problem):
    problems = conformance_problems(cls, protocol)
    assert any(problem in p for p in problems), problems


def test_station_limits_the_shield_reads_are_declared():
    """The shield tightens its checks with these when present (getattr, default inf)."""
    for cls, names in ((Mill, ("MAX_RPM", "MAX_DURATION_S")), (Press, ("MAX_FORCE_KN", "MAX_HOLD_S"))):
        for name in names:
            value = getattr(cls, name)
            assert math.isfinite(value) and value > 0, (cls.__name__, name)

