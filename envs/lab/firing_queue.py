"""The queue of firing jobs that the furnaces of the twin serve.

A job (one load of crucibles sharing a programme) goes to the first furnace that is free,
or waits for the furnace it is pinned to; jobs are served first come, first served among
those a furnace may fire. The rules of a ``simpy.FilterStore`` whose getters are the
furnaces, at one scheduled event per hand-over instead of three: a furnace that finds a
job takes it at once, an idle furnace waits on a plain :class:`simpy.Event`, and a new job
is handed straight to the first idle furnace that may fire it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import simpy

__all__ = ["FiringQueue"]

Job = TypeVar("Job")


class FiringQueue(Generic[Job]):
    """Jobs waiting for furnaces; ``may_fire(job, furnace)`` says which furnace may take a job.

    Use from a furnace's SimPy process::

        job = queue.get(f)
        if isinstance(job, simpy.Event):  # nothing to fire: wait
            job = yield job

    Attributes:
        jobs: the jobs waiting, oldest first.
    """

    def __init__(self, env: simpy.Environment, may_fire: Callable[[Job, int], bool]) -> None:
        self.env = env
        self.may_fire = may_fire
        self.jobs: list[Job] = []
        self._idle: list[tuple[int, simpy.Event]] = []  # furnaces waiting, longest first

    def __len__(self) -> int:
        return len(self.jobs)

    def put(self, job: Job) -> None:
        """Queue ``job``, or hand it to the first idle furnace that may fire it."""
        for k, (furnace, waiting) in enumerate(self._idle):
            if self.may_fire(job, furnace):
                del self._idle[k]
                waiting.succeed(job)
                return
        self.jobs.append(job)

    def get(self, furnace: int) -> Job | simpy.Event:
        """The oldest job ``furnace`` may fire, now; or an event that yields the next one."""
        for k, job in enumerate(self.jobs):
            if self.may_fire(job, furnace):
                return self.jobs.pop(k)
        waiting = self.env.event()
        self._idle.append((furnace, waiting))
        return waiting

    def cancel(self, waiting: simpy.Event) -> None:
        """A waiting furnace stops waiting (it broke down): leave the idle list; a job
        already handed to it goes back in the queue."""
        for k, (_, event) in enumerate(self._idle):
            if event is waiting:
                del self._idle[k]
                return
        if waiting.triggered:
            self.put(waiting.value)
