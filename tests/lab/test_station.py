"""Station: the rules of simpy.Resource (units, FIFO, hand-over at release) at one event per use."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from synthgap.envs.lab.station import Station


def _workload(seed: int, n: int = 60) -> list[tuple[float, float]]:
    """(arrival s, hold s) of n jobs: bursts, so queues form."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(30.0, n))
    return list(zip(arrivals.tolist(), rng.gamma(2.0, 40.0, n).tolist(), strict=True))


def _run_simpy_resource(jobs, capacity):
    env = simpy.Environment()
    res = simpy.Resource(env, capacity=capacity)
    starts: dict[int, float] = {}

    def job(i, arrive, hold):
        yield env.timeout(arrive)
        with res.request() as req:
            yield req
            starts[i] = env.now
            yield env.timeout(hold)

    for i, (a, h) in enumerate(jobs):
        env.process(job(i, a, h))
    env.run()
    return starts


def _run_station(jobs, capacity):
    env = simpy.Environment()
    station = Station(env, "xrd", capacity)
    starts: dict[int, float] = {}
    units: dict[int, int] = {}

    def job(i, arrive, hold):
        yield env.timeout(arrive)
        unit = station.acquire()
        if not isinstance(unit, int):
            unit = yield unit
        starts[i], units[i] = env.now, unit
        assert station.count <= capacity
        yield env.timeout(hold)
        station.release(unit)

    for i, (a, h) in enumerate(jobs):
        env.process(job(i, a, h))
    env.run()
    return starts, units


@pytest.mark.parametrize("capacity", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_same_start_times_as_simpy_resource(capacity, seed):
    jobs = _workload(seed)
    expected = _run_simpy_resource(jobs, capacity)
    starts, units = _run_station(jobs, capacity)
    assert starts == pytest.approx(expected, abs=0)
    waited = sum(starts[i] > jobs[i][0] for i in range(len(jobs)))
    assert waited > 5  # the workload really queued
    # no unit is held twice at once
    by_unit: dict[int, list[tuple[float, float]]] = {}
    for i, u in units.items():
        by_unit.setdefault(u, []).append((starts[i], starts[i] + jobs[i][1]))
    for spans in by_unit.values():
        spans.sort()
        assert all(a[1] <= b[0] + 1e-9 for a, b in zip(spans, spans[1:], strict=False))
    assert set(units.values()) == set(range(capacity))


def test_one_event_per_use_when_a_unit_is_free():
    env = simpy.Environment()
    station = Station(env, "robot", 1)
    assert station.acquire() == 0 and station.count == 1
    waiting = station.acquire()
    assert isinstance(waiting, simpy.Event) and len(station.queue) == 1
    station.release(0)  # handed straight to the waiter
    assert waiting.triggered and waiting.value == 0 and station.count == 1 and not station.queue


def test_cancel_leaves_the_queue_and_returns_a_handed_over_unit():
    env = simpy.Environment()
    station = Station(env, "mill", 1)
    unit = station.acquire()
    first, second = station.acquire(), station.acquire()
    station.cancel(first)
    assert list(station.queue) == [second]
    station.release(unit)
    assert second.triggered
    station.cancel(second)  # its unit was already handed over: back to the pool
    assert station.count == 0 and station.acquire() == 0


def test_bad_release_and_capacity_are_refused():
    env = simpy.Environment()
    with pytest.raises(ValueError, match="capacity must be an integer >= 1"):
        Station(env, "press", 0)
    station = Station(env, "press", 2)
    with pytest.raises(ValueError, match="unit 0 is not in use"):
        station.release(0)
    with pytest.raises(ValueError, match="unit 5 is not in use"):
        station.release(5)
