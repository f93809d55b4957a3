"""FiringQueue: the rules of a simpy.FilterStore served by furnaces (pinned jobs, FIFO)."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from synthgap.envs.lab.firing_queue import FiringQueue

N_FURNACES = 3


def may_fire(job, furnace):
    return job[1] is None or job[1] == furnace


def _jobs(seed: int, n: int = 80):
    """(id, pinned furnace or None, arrival s, firing s): bursts, a third of them pinned."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(600.0, n)).tolist()
    pins = [int(f) if rng.random() < 0.35 else None for f in rng.integers(0, N_FURNACES, n)]
    return [(i, pins[i], arrivals[i], float(rng.gamma(3.0, 700.0))) for i in range(n)]


def _serve(jobs, make_queue, take):
    """Run furnaces that serve ``jobs``; return {job id: (furnace, start s)}."""
    env = simpy.Environment()
    queue = make_queue(env)
    served = {}

    def furnace(f):
        while True:
            job = yield from take(queue, f)
            served[job[0]] = (f, env.now)
            yield env.timeout(job[3])

    def arrive(job):
        yield env.timeout(job[2])
        queue.put(job)

    for f in range(N_FURNACES):
        env.process(furnace(f))
    for job in jobs:
        env.process(arrive(job))
    env.run(until=10 * max(j[2] for j in jobs))
    return served


def _take_filter_store(store, f):
    return (yield store.get(lambda job: may_fire(job, f)))


def _take_firing_queue(queue, f):
    job = queue.get(f)
    if isinstance(job, simpy.Event):
        job = yield job
    return job


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_furnace_and_start_as_a_filter_store(seed):
    jobs = _jobs(seed)
    expected = _serve(jobs, simpy.FilterStore, _take_filter_store)
    got = _serve(jobs, lambda env: FiringQueue(env, may_fire), _take_firing_queue)
    assert got == expected and len(got) == len(jobs)
    assert sum(start > jobs[i][2] for i, (_, start) in got.items()) > 10  # jobs really waited
    assert all(f == jobs[i][1] for i, (f, _) in got.items() if jobs[i][1] is not None)  # pins kept


def test_pinned_job_waits_for_its_furnace_and_others_pass_it():
    env = simpy.Environment()
    queue = FiringQueue(env, may_fire)
    queue.put(("a", 1))
    queue.put(("b", None))
    assert queue.get(0) == ("b", None)  # furnace 0 may not fire "a": takes the next one
    assert len(queue) == 1
    waiting = queue.get(0)
    assert isinstance(waiting, simpy.Event)
    queue.put(("c", 1))  # not for furnace 0: it stays idle
    assert not waiting.triggered and len(queue) == 2
    queue.put(("d", 0))
    assert waiting.triggered and waiting.value == ("d", 0)
    assert queue.get(1) == ("a", 1) and queue.get(1) == ("c", 1)


def test_cancel_puts_a_handed_over_job_back():
    env = simpy.Environment()
    queue = FiringQueue(env, may_fire)
    idle0, idle1 = queue.get(0), queue.get(1)
    queue.cancel(idle0)  # broke down while idle: no job lost, none taken
    queue.put(("x", None))
    assert not idle0.triggered and idle1.triggered and idle1.value == ("x", None)
    queue.cancel(idle1)  # broke down at the hand-over: the job goes back in the queue
    assert queue.jobs == [("x", None)]
