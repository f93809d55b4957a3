"""MT-SICS balance driver against a scripted port: replies, every error form, faults."""

from __future__ import annotations

import pytest

from synthgap.hardware.balance import MTSICSBalance, WeightReading
from synthgap.hardware.errors import (
    BalanceBusy,
    BalanceLogicalError,
    BalanceOverload,
    BalanceSyntaxError,
    BalanceTransmissionError,
    BalanceUnderload,
    ConnectionLost,
    InstrumentTimeout,
    ProtocolError,
)
from synthgap.hardware.testing import ScriptedPort, expected_protocol


def _bal(script, **kw):
    return expected_protocol(MTSICSBalance, script, backoff_s=0.0, **kw)


def test_stable_weight():
    with _bal([(b"S\r\n", b"S S      12.3456 g\r\n")]) as bal:
        assert bal.stable_mass() == WeightReading(12.3456, True)


def test_immediate_dynamic_and_units():
    with _bal([(b"SI\r\n", b"SI D     -0.0012 g\r\n"), (b"SI\r\n", b"SI S   1.5 kg\r\n"),
               (b"SI\r\n", b"SI S   250 mg\r\n")]) as bal:
        assert bal.immediate_mass() == WeightReading(-0.0012, False)
        assert bal.immediate_mass().mass == pytest.approx(1500.0)
        assert bal.immediate_mass().mass == pytest.approx(0.25)


def test_zero_tare_reset():
    with _bal([(b"Z\r\n", b"Z A\r\n"), (b"T\r\n", b"T S     10.0000 g\r\n"),
               (b"@\r\n", b'I4 A "B021002593"\r\n')]) as bal:
        bal.zero()
        assert bal.tare() == pytest.approx(10.0)
        assert bal.reset() == "B021002593"


@pytest.mark.parametrize(("cmd", "reply", "error"), [
    (b"S", b"ES", BalanceSyntaxError),
    (b"S", b"EL", BalanceLogicalError),
    (b"S", b"S I", BalanceBusy),
    (b"S", b"S +", BalanceOverload),
    (b"S", b"S -", BalanceUnderload),
    (b"Z", b"Z I", BalanceBusy),
    (b"Z", b"Z +", BalanceOverload),
    (b"Z", b"Z -", BalanceUnderload),
    (b"Z", b"ES", BalanceSyntaxError),
    (b"T", b"T +", BalanceOverload),
    (b"T", b"EL", BalanceLogicalError),
    (b"@", b"ES", BalanceSyntaxError),
])
def test_error_replies_map_to_exceptions(cmd, reply, error):
    with _bal([(cmd + b"\r\n", reply + b"\r\n")]) as bal, pytest.raises(error):
        {b"S": bal.stable_mass, b"Z": bal.zero, b"T": bal.tare, b"@": bal.reset}[cmd]()


def test_transmission_error_is_retried_then_raised():
    with _bal([(b"S\r\n", b"ET\r\n"), (b"S\r\n", b"S S 1.0 g\r\n")]) as bal:
        assert bal.stable_mass().mass == 1.0
    with _bal([(b"S\r\n", b"ET\r\n")] * 2, retries=1) as bal:
        with pytest.raises(BalanceTransmissionError):
            bal.stable_mass()


@pytest.mark.parametrize("first", [None, b"S S  1.0", b"\x00\xffS S 1.0 g\r\n", b"X Y\r\n"],
                         ids=["timeout", "truncated", "garbage", "nonsense"])
def test_read_faults_then_retry(first):
    with _bal([(b"S\r\n", first), (b"S\r\n", b"S S      2.0000 g\r\n")]) as bal:
        assert bal.stable_mass().mass == 2.0


def test_faults_exhaust_retries():
    with _bal([(b"SI\r\n", None)] * 3) as bal, pytest.raises(InstrumentTimeout):
        bal.immediate_mass()
    with _bal([(b"S\r\n", b"S S 1.0 lb\r\n")] * 3) as bal, pytest.raises(ProtocolError):
        bal.stable_mass()


def test_zero_is_not_retried():
    with _bal([(b"Z\r\n", None)]) as bal, pytest.raises(InstrumentTimeout):
        bal.zero()


def test_port_vanishes():
    port = ScriptedPort([(b"S\r\n", ScriptedPort.VANISH)])
    with pytest.raises(ConnectionLost):
        MTSICSBalance(port).stable_mass()
