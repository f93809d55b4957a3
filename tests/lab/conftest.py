"""The ``lab_factory`` fixture: one lab front-end, every backend (twin, direct, hardware on the emulators)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from synthgap.envs.lab.frontend import Lab


@dataclass
class Backend:
    """One Lab implementation under contract: makes labs and says what they have done.

    Attributes:
        name: the fixture id ("twin", "hardware").
        make: ``make(seed) -> Lab``, a fresh lab (closed by the fixture at teardown).
        activity: ``activity(lab)``, a snapshot of everything the lab has done so far
            (clock and instrument use for the twin; journaled commands and instrument
            writes for the hardware): equal before and after a refused request.
        simulated: True when a seed reproduces the lab's results.
    """

    name: str
    make: Callable[[int], Lab]
    activity: Callable[[Lab], Any]
    simulated: bool
    opened: list[Lab] = field(default_factory=list)

    def __call__(self, seed: int = 0) -> Lab:
        lab = self.make(seed)
        self.opened.append(lab)
        return lab


def _twin() -> Backend:
    from synthgap.envs.lab import LabParams, SimLab

    def make(seed: int) -> Lab:
        # no breakdowns: the emulated hardware has none either, and a failed firing is no record
        return SimLab("BaTiO3", n_furnaces=2, seed=seed, config=LabParams(mtbf_h=math.inf))

    def activity(lab) -> Any:
        return lab.now, len(lab.usage), len(lab.firings), len(lab.queue_log)

    return Backend("twin", make, activity, simulated=True)


def _direct() -> Backend:
    from synthgap.envs.chemistry import load_system
    from synthgap.envs.lab.direct import DirectBackend

    def make(seed: int) -> Lab:
        return Lab(DirectBackend(load_system("BaTiO3"), seed))

    def activity(lab) -> Any:
        return lab.now, len(lab.firings), lab.backend.rng.bit_generator.state["state"]["state"]

    return Backend("direct", make, activity, simulated=True)


def _hardware(tmp_path, emu) -> Backend:
    from synthgap.hardware.journal import read_journal
    from synthgap.hardware.lab import HardwareLab

    def make(seed: int) -> Lab:  # the seed is the emulators' (fixed), not the lab's
        return HardwareLab(emu.lab_file, journal=tmp_path / f"journal-{len(backend.opened)}.jsonl")

    def activity(lab) -> Any:
        commands = sum(1 for e in read_journal(lab.journal_path).events if e["event"] == "command")
        furnace_writes = sum(1 for f in list(emu.furnace.requests) if len(f) > 1 and f[1] in (6, 16))
        balance = sum(1 for f in list(emu.balance.requests) if f not in (b"S", b"SI"))
        stations = tuple(len(s.executed) for s in (emu.robot, emu.mill, emu.press))
        return commands, furnace_writes, balance, stations, len(emu.xrd.answered)

    backend = Backend("hardware", make, activity, simulated=False)  # make() counts its labs
    return backend


@pytest.fixture(params=["twin", "direct", "hardware"])
def lab_factory(request, tmp_path):
    """A :class:`Backend`: call it for a fresh lab of that backend (closed at teardown)."""
    if request.param == "twin":
        backend = _twin()
    elif request.param == "direct":
        backend = _direct()
    else:
        backend = _hardware(tmp_path, request.getfixturevalue("lab_emulator"))
    yield backend
    for lab in backend.opened:
        close = getattr(lab, "close", None)
        if close is not None:
            close()


