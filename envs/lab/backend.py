"""The seam between the lab's front-end and what executes: the :class:`LabBackend` protocol.

The front-end (:class:`~synthgap.envs.lab.frontend.Lab`) validates, owns the sample records
and ids, and runs the chain in one order; a backend only executes. PyLabRobot's
front-end/backend split is the model. Three backends implement this protocol:

- :class:`~synthgap.envs.lab.twin.TwinBackend`: the SimPy twin (queues, furnaces with
  offsets, drift and breakdowns, precursor lots);
- :class:`~synthgap.envs.lab.direct.DirectBackend`: no event queue, one sample after the
  other with nominal durations (the benchmark's fast lab);
- :class:`~synthgap.hardware.backend.HardwareBackend`: the instruments behind the safety shield.

**Steps.** Every operation returns a :data:`Step`: a generator the backend's scheduler
runs, whose return value is the operation's result. In the twin a step yields SimPy events
(so many samples advance together on one clock); in a sequential backend (direct,
hardware) a step does its work and returns without yielding. The front-end writes its chain
once as ``result = yield from backend.dispense(...)`` and runs on either.

Importing this module imports neither SimPy nor gymnasium.

Units: lab clock s, masses g, milling h, temperatures K.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from synthgap.envs.chemistry import ChemicalSystem

from .records import (
    Characterisation,
    FurnaceLog,
    FurnaceReadings,
    Programme,
    SampleRecord,
    SampleStatus,
    SampleTruth,
    Segment,
)
from .validation import LabCaps

__all__ = ["Step", "Dose", "LabBackend", "BackendKind", "SequentialScheduler", "run_now", "immediate", "PLACES"]

T = TypeVar("T")
#: A backend operation: a generator run by the backend's scheduler; its return value is the result.
Step = Generator[Any, Any, T]
#: Which kind of lab made a result (reported beside every number).
BackendKind = Literal["twin", "direct", "hardware"]
#: The places a sample moves between, in the chain's order.
PLACES = ("rack", "balance", "mill", "press", "furnace", "xrd", "storage")


@dataclass(frozen=True, slots=True)
class Dose:
    """What the balance reported for one dispensed precursor.

    Attributes:
        weighed_g: the balance reading, g.
        lot: the precursor lot's id ("" where the lab does not track lots).
        humidity: the lab's relative humidity at dispensing (0-1; NaN where not measured).
    """

    weighed_g: float
    lot: str = ""
    humidity: float = math.nan


class LabBackend(Protocol):
    """What executes the lab's steps (see the module docstring).

    Attributes:
        kind: which lab this is (:data:`BackendKind`), reported with every result.
        n_furnaces: furnaces a load may be pinned to (0..n-1).
        system: the chemical system it makes.
        caps: its own limits beyond the recipe and programme limits.
        batch_mass_g: g of target each recipe is weighed for.
        ambient_K: the furnace's ambient (start and end of a recipe's programme), K.
        finished_status: the status of a sample whose chain completed ("done"; "dry_run"
            for a hardware dry run).
        truth: sample id -> simulator truth (simulated backends; empty on hardware).
            Privileged: for the oracle and evaluation only.
        firings: every furnace log (reference runs included), in finishing order.
        truth_system: the chemistry a simulated backend really fires (its drawn world), None
            on hardware. PRIVILEGED.
    """

    kind: BackendKind
    n_furnaces: int
    system: ChemicalSystem
    caps: LabCaps
    batch_mass_g: float
    ambient_K: float
    finished_status: SampleStatus
    truth: dict[str, SampleTruth]
    firings: list[FurnaceLog]
    truth_system: ChemicalSystem | None

    @property
    def now(self) -> float:
        """Lab clock, s."""
        ...

    # ---------------------------------------------------------------- scheduling
    def start(self, process: Generator[Any, Any, Any], sample_ids: Sequence[str]) -> object:
        """Schedule a chain (a generator of steps) for ``sample_ids``; return a handle for
        :meth:`advance`."""
        ...

    def advance(self, until: float | None = None, handle: object | None = None) -> None:
        """Run scheduled chains: until ``handle``'s chain is finished (None: all of them) or
        lab time ``until`` s."""
        ...

    def execute(self, step: Step[T], sample_id: str) -> T:
        """Run one step now (the step-by-step API) and return its result."""
        ...

    def parallel(self, steps: Iterable[Step[Any]]) -> Step[list[Any]]:
        """A step that runs ``steps`` together (the twin) or one after the other (sequential
        backends); its result is their results, in order."""
        ...

    # ---------------------------------------------------------------- samples
    def open_sample(self, rec: SampleRecord) -> None:
        """A new sample was registered (its record is the front-end's)."""
        ...

    def close_sample(self, rec: SampleRecord) -> None:
        """A sample finished (``rec.status`` is final)."""
        ...

    # ---------------------------------------------------------------- instruments
    def transfer(self, rec: SampleRecord, src: str, dst: str) -> Step[None]:
        """Move the sample's vial or crucible between two :data:`PLACES`."""
        ...

    def dispense(self, rec: SampleRecord, precursor: str, mass_g: float) -> Step[Dose]:
        """Dispense ``mass_g`` g of ``precursor`` into the sample's vial and weigh it."""
        ...

    def mill(self, rec: SampleRecord, hours: float) -> Step[None]:
        """Ball-mill the sample for ``hours`` h."""
        ...

    def press(self, rec: SampleRecord) -> Step[None]:
        """Press the milled powder into a pellet."""
        ...

    def fire(self, recs: Sequence[SampleRecord], programme: Programme, furnace: int | None) -> Step[FurnaceLog]:
        """Fire one load with one programme (on ``furnace``, or the first free one)."""
        ...

    def characterise(self, rec: SampleRecord) -> Step[Characterisation | None]:
        """XRD and property of a fired sample; None when the result is computed later and
        handed out by :meth:`settle` (the twin batches its chemistry)."""
        ...

    def open_firing(self, recs: Sequence[SampleRecord], atmosphere: str, furnace: int | None) -> Step[object]:
        """Load crucibles into a furnace for a live session (:mod:`~synthgap.envs.lab.session`);
        return the session's handle."""
        ...

    def continue_firing(self, handle: object, segments: tuple[Segment, ...]) -> Step[FurnaceReadings]:
        """Run programme segments on the session's furnace, continuing its state; the readings."""
        ...

    def close_firing(self, handle: object) -> Step[FurnaceLog]:
        """End the session (the furnace is at ambient or broke down); the whole firing's log."""
        ...

    def settle(self) -> list[tuple[str, Characterisation]]:
        """Results of characterisations that :meth:`characterise` deferred: (sample id,
        characterisation). Called before records are handed out."""
        ...

    def close(self) -> None:
        """Free what the backend holds (ports, threads); idempotent."""
        ...


def run_now(step: Step[T]) -> T:
    """Run a step that must not wait on an event (a sequential backend's) and return its result.

    Raises:
        RuntimeError: the step yielded (it waited on an event no scheduler will deliver).
    """
    try:
        step.send(None)
    except StopIteration as done:
        return done.value
    step.close()
    raise RuntimeError("a step of a sequential backend waited on an event; run it on the twin")


class SequentialScheduler:
    """Scheduling for backends that do one thing at a time (direct, hardware).

    Chains run in submission order, each to completion, inside :meth:`guard` (the hardware
    backend makes the lab safe there when a chain fails). ``advance(until)`` stops between
    chains once the clock reaches ``until``.
    """

    def __init__(self) -> None:
        self._queue: list[tuple[Generator[Any, Any, Any], str]] = []

    @property
    def now(self) -> float:  # pragma: no cover - every backend defines its clock
        raise NotImplementedError

    def guard(self, sample_id: str, action: Callable[[], T]) -> T:
        """Run ``action`` for ``sample_id``; a subclass may make the lab safe on failure."""
        return action()

    def idle_until(self, until: float) -> None:
        """Nothing is queued and the caller asked to wait until lab time ``until`` s."""

    def start(self, process: Generator[Any, Any, Any], sample_ids: Sequence[str]) -> object:
        item = (process, sample_ids[0] if sample_ids else "")
        self._queue.append(item)
        return item

    def advance(self, until: float | None = None, handle: object | None = None) -> None:
        if not self._queue and until is not None:
            self.idle_until(until)
        while self._queue and (until is None or self.now < until):
            process, sid = item = self._queue.pop(0)
            self.guard(sid, lambda process=process: run_now(process))
            if item is handle:
                return

    def execute(self, step: Step[T], sample_id: str) -> T:
        return self.guard(sample_id, lambda: run_now(step))

    def parallel(self, steps: Iterable[Step[Any]]) -> Step[list[Any]]:
        out = []
        for step in steps:
            out.append((yield from step))
        return out

    def settle(self) -> list[tuple[str, Characterisation]]:
        return []


def immediate(fn: Callable[..., T]) -> Callable[..., Step[T]]:
    """Make a plain method a :data:`Step` that does its work and returns without yielding
    (how a sequential backend writes its steps)."""
    @functools.wraps(fn)
    def step(*args: Any, **kwargs: Any) -> Step[T]:
        return fn(*args, **kwargs)
        yield  # pragma: no cover - makes this a generator; never reached

    return step
