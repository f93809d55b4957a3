"""Walk every driver and check the project conventions (STYLE.md, instruments)."""

from __future__ import annotations

import importlib
import inspect
import logging

import pytest

from synthgap.hardware import errors

DRIVERS = [
    ("synthgap.hardware.eurotherm", "EurothermController"),
    ("synthgap.hardware.balance", "MTSICSBalance"),
    ("synthgap.hardware.stations", "Mill"),
    ("synthgap.hardware.stations", "Press"),
    ("synthgap.hardware.stations", "RobotArm"),
]


@pytest.mark.parametrize(("module_name", "cls_name"), DRIVERS)
def test_driver_conventions(module_name, cls_name):
    module = importlib.import_module(module_name)
    cls = getattr(module, cls_name)
    assert isinstance(module.log, logging.Logger) and module.log.name == module_name
    assert "print(" not in inspect.getsource(module)
    params = list(inspect.signature(cls.__init__).parameters)
    assert params[1] == "port", "a driver is one class over an injected transport"
    assert callable(getattr(cls, "from_url", None)) and callable(cls.close)
    for name, member in inspect.getmembers(cls):
        if not name.startswith("_") and (inspect.isfunction(member)
                                         or isinstance(member, property)):
            assert (member.__doc__ or "").strip(), f"{cls_name}.{name} has no docstring"


def test_every_error_is_an_instrument_error_or_documented_exception():
    for name in errors.__all__:
        exc = getattr(errors, name)
        assert issubclass(exc, errors.InstrumentError | errors.SafetyViolation
                          | errors.ConfigError), name
