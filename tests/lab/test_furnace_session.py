"""A furnace driven live (``Lab.open_furnace``): one behaviour on every backend.

Runs over the ``lab_factory`` fixture (tests/lab/conftest.py): the twin, the direct backend
and the hardware lab on the pty emulators. The load is prepared step by step, then driven
interval by interval, unloaded and measured. Nothing here reads a wall clock.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from synthgap.envs.chemistry import Recipe, RecipeBatch, TemperatureTrace, fire, load_system
from synthgap.envs.chemistry.firing import starting_amounts
from synthgap.envs.chemistry.incremental import IncrementalFiring
from synthgap.envs.lab.protocol import LabInputError
from synthgap.envs.lab.session import hold_segments

R = Recipe("BaTiO3", ("BaCO3", "TiO2"), excess=0.0, milling_time=1.0)
INTERVAL_S = 900.0
RATE = 20.0  # K/min


def prepared(lab) -> str:
    sid = lab.new_sample(R)
    for p, m in lab.commanded_masses(R):
        lab.dispense(sid, p, m)
    lab.mill(sid, R.milling_time)
    lab.press(sid)
    return sid


def test_a_load_driven_live_is_logged_unloaded_and_measured(lab_factory):
    lab = lab_factory()
    sid = prepared(lab)
    session = lab.open_furnace([sid])
    t0 = lab.now
    plan = [900.0, 1300.0, 1300.0, 1250.0]
    ends = []
    for sp in plan:
        rd = session.hold(sp, INTERVAL_S, RATE)
        assert rd.status == "ok" and rd.time_s.size == rd.setpoint_K.size == rd.thermocouple_K.size > 0
        assert np.all(np.diff(rd.time_s) > 0) and (not ends or rd.time_s[0] > ends[-1])
        ends.append(float(rd.time_s[-1]))
        assert np.all(rd.setpoint_K <= max(plan) + 1e-9)
    # the controller ramps at 20 K/min: 900 K is reached within the first interval from ambient
    assert session.setpoint_K == 1250.0 and session.segments[0].kind == "ramp"
    assert lab.now - t0 >= len(plan) * INTERVAL_S - 1e-6
    with pytest.raises(LabInputError, match="in an open furnace session"):
        lab.fire([sid], session_programme(session))
    with pytest.raises(LabInputError, match="in an open furnace session; unload it first"):
        lab.characterise(sid)
    log = session.unload(10.0)
    assert log.status == "ok" and log.sample_ids == (sid,) and not session.open
    assert tuple(log.programme.segments) == tuple(session.segments)
    assert log.programme.segments[-1].kind == "cool" and log.programme.segments[-1].end_K == pytest.approx(
        lab.backend.ambient_K)
    assert log.finished_s - log.started_s >= log.programme.duration_s - 1e-6
    rec = lab.records[sid]
    assert rec.firing_id == log.firing_id and rec.programme == log.programme
    ch = lab.characterise(sid)
    assert set(ch.phase_fractions) == set(lab.system.solids) and sum(ch.phase_fractions.values()) == pytest.approx(1)
    assert math.isfinite(ch.performance) and lab.records[sid].status == "done"
    with pytest.raises(LabInputError, match="the load was unloaded"):
        session.hold(1000.0, INTERVAL_S, RATE)


def session_programme(session):
    from synthgap.envs.lab.records import Programme

    return Programme(tuple(session.segments))


@pytest.mark.parametrize("call, message", [
    (lambda s: s.hold(1900.0, INTERVAL_S, RATE), "programme setpoint 1900 K is above this lab's limit"),
    (lambda s: s.hold(1000.0, 0.0, RATE), "duration_s must be a finite number > 0 s, got 0.0"),
    (lambda s: s.hold(1000.0, INTERVAL_S, 500.0), "segment rate 500 K/min is above this lab's limit"),
    (lambda s: s.hold(math.nan, INTERVAL_S, RATE), "setpoint_K must be a finite temperature in K, got nan"),
    (lambda s: s.unload(-1.0), "cooling_rate_K_per_min must be a finite number > 0 K/min, got -1.0"),
])
def test_bad_session_requests_are_refused_before_anything_runs(lab_factory, call, message):
    lab = lab_factory()
    session = lab.open_furnace([prepared(lab)])
    try:
        before = lab_factory.activity(lab), len(session.segments), session.setpoint_K
        with pytest.raises(LabInputError, match=message):
            call(session)
        assert (lab_factory.activity(lab), len(session.segments), session.setpoint_K) == before  # nothing ran
    finally:
        session.unload(10.0)  # a hardware furnace left hot would refuse the next test's crucible


def test_open_furnace_refuses_bad_loads(lab_factory):
    lab = lab_factory()
    with pytest.raises(LabInputError, match="unknown sample id 'S99999'"):
        lab.open_furnace(["S99999"])
    sid = prepared(lab)
    with pytest.raises(LabInputError, match="atmosphere 'Ar' unknown"):
        lab.open_furnace([sid], atmosphere="Ar")
    with pytest.raises(LabInputError, match="duplicate sample ids"):
        lab.open_furnace([sid, sid])
    lab.open_furnace([sid]).unload(10.0)


def test_hold_segments_ramp_then_dwell_or_stop_short():
    ramp, dwell = hold_segments(300.0, 900.0, 3600.0, 20.0)  # 30 min of ramp, then 30 min at 900 K
    assert (ramp.kind, ramp.end_K, ramp.duration_s) == ("ramp", 900.0, 1800.0)
    assert (dwell.kind, dwell.start_K, dwell.duration_s) == ("dwell", 900.0, 1800.0)
    (short,) = hold_segments(300.0, 1300.0, 600.0, 20.0)  # 10 min at 20 K/min: 200 K of the way
    assert short.end_K == pytest.approx(500.0) and short.duration_s == 600.0
    (down,) = hold_segments(1300.0, 1200.0, 60.0, 10.0)
    assert down.kind == "cool" and down.end_K == pytest.approx(1290.0)


def test_incremental_firing_equals_firing_the_whole_trace():
    system = load_system("BaTiO3")
    recipe = replace(R, milling_time=2.0)
    batch = RecipeBatch.from_recipes(system, [recipe])
    initial = starting_amounts(system, batch)
    T = np.concatenate([np.linspace(400.0, 1450.0, 40), np.full(20, 1450.0)])
    dt = np.full(T.size, 300.0)
    whole = fire(system, batch, trace=TemperatureTrace(T[None], dt[None]), initial=initial)
    live = IncrementalFiring(system, [recipe], initial, "air")
    losses = []
    for k in range(0, T.size, 7):
        live.react(T[k:k + 7], dt[k:k + 7])
        losses.append(float(live.mass_loss[0]))
    out = live.outcome()
    np.testing.assert_allclose(out.phase_fractions, whole.phase_fractions, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(out.performance, whole.performance, rtol=1e-12)
    assert np.all(np.diff(losses) >= -1e-12) and 0.0 < losses[-1] < 0.5  # CO2 leaves; the mass never returns


def test_a_twin_furnace_that_breaks_down_ends_the_session_and_loses_the_load():
    from synthgap.envs.lab import LabParams, SimLab

    # no randomness in the failure: the furnace breaks down 1 h after the lab opens
    lab = SimLab("BaTiO3", n_furnaces=1, seed=2, config=LabParams(mtbf_h=1.0, stochastic=False, repair_h=1.0,
                                                                   reference_every=0))
    sid = prepared(lab)
    session = lab.open_furnace([sid])
    readings = [session.hold(1200.0, 1800.0, RATE) for _ in range(3) if session.open]
    assert readings[-1].status == "failed" and not session.open
    assert session.log is not None and session.log.status == "failed"
    with pytest.raises(LabInputError, match="the furnace broke down"):
        session.hold(1200.0, 1800.0, RATE)
    with pytest.raises(LabInputError, match="has not been fired successfully"):
        lab.characterise(sid)
