"""A lab station (robot, balance, mill, press, XRD, property rig): identical units, one FIFO queue.

Same rules as ``simpy.Resource`` (a fixed number of units, first come first served, a
released unit goes to the first waiter at the same instant), at one scheduled SimPy event
per use instead of three. ``simpy.Resource`` schedules a request event even when a unit
is free, and a release event after every use; a campaign step makes about nine station
uses, and those events were most of its run time. Here a free unit is taken at once, a
sample that finds every unit busy waits on a plain :class:`simpy.Event`, and a release
hands the unit straight to that event.

Units are numbered from 0; the lowest free number is taken, so ``xrd-0`` is used first.
"""

from __future__ import annotations

import heapq
from collections import deque

import simpy

__all__ = ["Station"]


class Station:
    """``capacity`` identical units of one instrument on a SimPy environment.

    Use from a SimPy process::

        unit = station.acquire()
        if isinstance(unit, simpy.Event):  # every unit busy: wait in line
            unit = yield unit
        ...  # hold the unit
        station.release(unit)

    Attributes:
        name: the station's name ("robot", "xrd", ...).
        capacity: number of units.
        queue: events of the samples waiting, first in line first.
    """

    def __init__(self, env: simpy.Environment, name: str, capacity: int) -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"station {name!r}: capacity must be an integer >= 1, got {capacity!r}")
        self.env, self.name, self.capacity = env, name, capacity
        self._free = list(range(capacity))  # a heap: lowest unit number first
        self.queue: deque[simpy.Event] = deque()

    @property
    def count(self) -> int:
        """Units in use."""
        return self.capacity - len(self._free)

    def acquire(self) -> int | simpy.Event:
        """A free unit's number now, or an event that yields the unit when one is released."""
        if self._free and not self.queue:
            return heapq.heappop(self._free)
        waiting = self.env.event()
        self.queue.append(waiting)
        return waiting

    def cancel(self, waiting: simpy.Event) -> None:
        """Leave the queue (a waiting process was interrupted); a unit already handed over
        to it is released."""
        if waiting in self.queue:
            self.queue.remove(waiting)
        elif waiting.triggered:
            self.release(waiting.value)

    def release(self, unit: int) -> None:
        """Give ``unit`` back: to the first waiter if there is one, else to the free pool."""
        if not 0 <= unit < self.capacity or unit in self._free:
            raise ValueError(f"station {self.name!r}: unit {unit!r} is not in use")
        if self.queue:
            self.queue.popleft().succeed(unit)
        else:
            heapq.heappush(self._free, unit)
