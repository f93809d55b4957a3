"""The lab: one front-end over any :class:`~synthgap.envs.lab.backend.LabBackend`.

:class:`Lab` is the only place that validates a request, registers a sample (its id and
record), runs the chain (in one order, below) and writes the records; the backend (twin,
direct or hardware) only executes. Every env, planner and deploy talks to a ``Lab``; which
backend made a result is ``lab.kind``.

The chain of one sample (``submit``/``run_recipe``)::

    rack -> balance; dispense and weigh each precursor (masses from
    stoichiometry.precursor_masses for ``batch_mass_g`` g of target, excess on the first);
    balance -> mill; mill ``milling_time`` h; mill -> press; press; press -> furnace;
    fire the recipe's programme (ambient -> dwell -> ambient); furnace -> xrd;
    XRD + property; xrd -> storage.

A shared load (``submit_load``) prepares each crucible, fires them together once, then
measures each. The step-by-step API (``new_sample``, ``dispense``, ``mill``, ``press``,
``fire``, ``characterise``) runs the same steps one call at a time; ``characterise``
finishes the sample. ``open_furnace`` drives a load's furnace interval by interval instead
of ``fire`` (:mod:`.session`).

Importing this module imports neither SimPy nor gymnasium.

Units: lab clock s, masses g, milling h, temperatures K.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

from synthgap.envs.chemistry import ChemicalSystem, Recipe
from synthgap.envs.chemistry.stoichiometry import precursor_masses

from . import validation
from .backend import BackendKind, LabBackend, Step
from .protocol import LabInputError
from .records import Characterisation, FurnaceLog, Programme, SampleRecord, SampleStatus, SampleTruth, write_records
from .session import FurnaceSession

__all__ = ["Lab", "FINISHED"]

#: statuses after which a sample takes no more steps
FINISHED: frozenset[SampleStatus] = frozenset({"done", "failed", "dry_run"})


class Lab:
    """A self-driving lab for solid-state synthesis, over one backend.

    ``run_recipe`` runs the whole chain for one sample and returns when it is done.
    ``submit``/``submit_load``/``run`` let several agents share the lab: submitted samples
    advance together on the lab clock (on the twin; a sequential backend makes them one
    after the other). The step-by-step methods drive the instruments one step at a time.
    Bad input raises :class:`~synthgap.envs.lab.protocol.LabInputError` (a ``ValueError``)
    before anything happens.

    Args:
        backend: what executes (:class:`~synthgap.envs.lab.backend.LabBackend`).
        sample_ids: makes the next sample id (default ``S00001``, ``S00002``, ...; the
            hardware lab continues its campaign's ids from the journal).

    Attributes:
        backend: the backend.
        system: the chemical system (the backend's).
        caps: the lab's own limits (the backend's).
        records: sample id -> :class:`SampleRecord`, every sample registered.
    """

    def __init__(self, backend: LabBackend, *, sample_ids: Callable[[], str] | None = None) -> None:
        self.backend = backend
        self.system = backend.system
        self.caps = backend.caps
        self._solids = tuple(backend.system.solids)
        self.records: dict[str, SampleRecord] = {}
        self._sample_ids = sample_ids  # None: S00001, S00002, ... (no bound method kept: no cycle)
        self._n_samples = 0
        self._fired: set[str] = set()
        self._in_furnace: set[str] = set()  # in an open furnace session
        self._unreported: list[SampleRecord] = []
        self._closed = False
        #: the tag of a sample submitted without one
        self.default_tag = ""

    # ------------------------------------------------------------------ identity and clock
    @property
    def kind(self) -> BackendKind:
        """Which lab made this lab's results: "twin", "direct" or "hardware"."""
        return self.backend.kind

    @property
    def now(self) -> float:
        """Lab clock, s."""
        return self.backend.now

    @property
    def firings(self) -> list[FurnaceLog]:
        """Every :class:`FurnaceLog` of this lab (reference runs included), in finishing order."""
        return self.backend.firings

    @property
    def truth(self) -> dict[str, SampleTruth]:
        """Sample id -> simulator truth (simulated backends; empty on hardware). PRIVILEGED:
        for the oracle, tests and evaluation only; no agent, reward or planner may read it."""
        return self.backend.truth

    @property
    def truth_system(self) -> ChemicalSystem | None:
        """The chemistry this lab really has (a drawn world; the nominal system when none was
        drawn), None on hardware. PRIVILEGED: for the per-world oracle and evaluation only."""
        return self.backend.truth_system

    def commanded_masses(self, recipe: Recipe) -> list[tuple[str, float]]:
        """(precursor, g) the chain weighs for ``batch_mass_g`` g of target, excess included."""
        return precursor_masses(self.system, recipe.target, recipe.precursors, self.backend.batch_mass_g,
                                recipe.excess)

    # ------------------------------------------------------------------ the whole chain
    def submit(self, recipe: Recipe, tag: str = "") -> str:
        """Queue a sample for the whole chain; return its id (raises before queuing)."""
        self._check_recipe(recipe)
        rec = self._new_sample(recipe, tag)
        self.backend.start(self._chain(rec), [rec.sample_id])
        return rec.sample_id

    def submit_load(self, recipes: Sequence[Recipe], tags: Sequence[str] | None = None) -> list[str]:
        """Queue samples that share one furnace load (one programme); return their ids.

        Each sample is weighed, milled and pressed on its own; the load is fired once all of
        them are ready, in one furnace run with the recipes' common programme.

        Raises:
            LabInputError: the recipes' programmes differ, or a recipe is invalid (nothing queued).
        """
        recipes = list(recipes)
        tags = list(tags) if tags is not None else [""] * len(recipes)
        programme = validation.check_load(recipes, tags, self._check_recipe, self.backend.ambient_K)
        members = [self._new_sample(r, t) for r, t in zip(recipes, tags, strict=True)]
        self.backend.start(self._load_chain(members, programme), [m.sample_id for m in members])
        return [m.sample_id for m in members]

    def run(self, until: float | None = None) -> list[SampleRecord]:
        """Advance until every submitted sample is finished, or lab time ``until`` s.

        Returns the records finished since the last ``run`` that ``run_recipe`` did not
        already return, in finishing order.
        """
        self.backend.advance(validation.check_until(until, self.now))
        self._settle()
        out, self._unreported = self._unreported, []
        return out

    def run_recipe(self, recipe: Recipe) -> SampleRecord:
        """Make and measure one sample; the clock advances until it is finished."""
        self._check_recipe(recipe)
        rec = self._new_sample(recipe, "")
        handle = self.backend.start(self._chain(rec), [rec.sample_id])
        self.backend.advance(handle=handle)
        self._settle()
        self._unreported.remove(rec)
        return rec

    def _chain(self, rec: SampleRecord) -> Generator[Any, Any, None]:
        yield from self._prepare(rec)
        log = yield from self._fire([rec], Programme.from_recipe(rec.recipe, self.backend.ambient_K), None)
        yield from self._after_firing(rec, log)

    def _load_chain(self, members: list[SampleRecord], programme: Programme) -> Generator[Any, Any, None]:
        b = self.backend
        yield from b.parallel([self._prepare(r) for r in members])
        log = yield from self._fire(members, programme, None)
        yield from b.parallel([self._after_firing(r, log) for r in members])

    def _prepare(self, rec: SampleRecord) -> Generator[Any, Any, None]:
        """rack -> balance, dispense each precursor, mill, press, crucible to the furnace."""
        b = self.backend
        rec.status, rec.started_s = "running", self.now
        yield from b.transfer(rec, "rack", "balance")
        for p, m in self.commanded_masses(rec.recipe):
            yield from self._dispense(rec, p, m)
        yield from b.transfer(rec, "balance", "mill")
        yield from self._mill(rec, rec.recipe.milling_time)
        yield from b.transfer(rec, "mill", "press")
        yield from b.press(rec)
        yield from b.transfer(rec, "press", "furnace")

    def _after_firing(self, rec: SampleRecord, log: FurnaceLog) -> Generator[Any, Any, None]:
        if log.status == "ok":
            yield from self._measure(rec)
            self._finish(rec, self.backend.finished_status)
        else:
            self._finish(rec, "failed")

    # ------------------------------------------------------------------ the steps and the one record writer
    def _dispense(self, rec: SampleRecord, precursor: str, mass_g: float) -> Step[float]:
        dose = yield from self.backend.dispense(rec, precursor, mass_g)
        rec.weighed_g[precursor] = rec.weighed_g.get(precursor, 0.0) + dose.weighed_g
        if dose.lot:
            rec.lot[precursor] = dose.lot
        if math.isnan(rec.humidity):
            rec.humidity = dose.humidity
        return dose.weighed_g

    def _mill(self, rec: SampleRecord, hours: float) -> Step[None]:
        yield from self.backend.mill(rec, hours)
        rec.mill_time_h = hours

    def _fire(self, recs: list[SampleRecord], programme: Programme, furnace: int | None) -> Step[FurnaceLog]:
        log = yield from self.backend.fire(recs, programme, furnace)
        self._fired_load(recs, log)
        return log

    def _fired_load(self, recs: Sequence[SampleRecord], log: FurnaceLog) -> None:
        """Write a finished firing onto its crucibles' records."""
        summary = log.summary()
        for rec in recs:
            rec.furnace, rec.firing_id, rec.programme = log.furnace, log.firing_id, log.programme
            rec.tc_summary = summary
            self._in_furnace.discard(rec.sample_id)
            if log.status == "ok":
                self._fired.add(rec.sample_id)

    def _measure(self, rec: SampleRecord) -> Step[None]:
        """furnace -> xrd, XRD and property, xrd -> storage."""
        b = self.backend
        yield from b.transfer(rec, "furnace", "xrd")
        result = yield from b.characterise(rec)
        if result is not None:
            self._write_characterisation(rec, result)
        yield from b.transfer(rec, "xrd", "storage")

    def _write_characterisation(self, rec: SampleRecord, ch: Characterisation) -> None:
        if ch.phase_fractions or not math.isnan(ch.performance):
            rec.xrd_phase_fractions = {p: float(ch.phase_fractions.get(p, 0.0)) for p in self._solids}
            rec.performance = float(ch.performance)
        if ch.xrd_id:
            rec.instruments["xrd"] = ch.xrd_id
        if ch.property_id:
            rec.instruments["property"] = ch.property_id

    def _finish(self, rec: SampleRecord, status: SampleStatus) -> None:
        rec.status, rec.finished_s = status, self.now
        self._unreported.append(rec)
        self.backend.close_sample(rec)

    def _settle(self) -> None:
        for sid, ch in self.backend.settle():
            self._write_characterisation(self.records[sid], ch)

    # ------------------------------------------------------------------ samples and validation
    def _count_id(self) -> str:
        return f"S{self._n_samples:05d}"

    def _new_sample(self, recipe: Recipe, tag: str, status: SampleStatus = "queued") -> SampleRecord:
        self._n_samples += 1
        sid = self._sample_ids() if self._sample_ids is not None else self._count_id()
        if sid in self.records:
            raise RuntimeError(f"sample id {sid!r} was given twice")
        rec = SampleRecord(sid, tag or self.default_tag, recipe, status=status)
        self.records[sid] = rec
        self.backend.open_sample(rec)
        return rec

    def _check_recipe(self, recipe: Recipe) -> None:
        validation.check_recipe(self.system, recipe, self.caps, self.backend.batch_mass_g)

    def _active(self, sample_id: str) -> SampleRecord:
        rec = self.records.get(sample_id) if isinstance(sample_id, str) else None
        if rec is None:
            raise LabInputError(f"unknown sample id {sample_id!r}")
        if rec.status in FINISHED:
            raise LabInputError(f"sample {sample_id!r} is finished ({rec.status}); register a new one")
        if sample_id in self._in_furnace:
            raise LabInputError(f"sample {sample_id!r} is in an open furnace session; unload it first")
        return rec

    # ------------------------------------------------------------------ step by step
    def new_sample(self, recipe: Recipe, tag: str = "") -> str:
        """Register a sample to be driven step by step (dispense, mill, press, fire, characterise)."""
        self._check_recipe(recipe)
        rec = self._new_sample(recipe, tag, "running")
        rec.started_s = self.now
        return rec.sample_id

    def dispense(self, sample_id: str, precursor: str, mass_g: float) -> float:
        """Dispense ``mass_g`` g of ``precursor`` (the vial goes to the balance first); return
        the balance reading, g."""
        rec = self._active(sample_id)
        mass_g = validation.check_dose(self.system, precursor, mass_g)
        first = not rec.weighed_g

        def step() -> Step[float]:
            if first:
                yield from self.backend.transfer(rec, "rack", "balance")
            return (yield from self._dispense(rec, precursor, mass_g))
        return self.backend.execute(step(), sample_id)

    def mill(self, sample_id: str, hours: float) -> None:
        """Ball-mill the sample for ``hours`` h (the vial leaves the balance)."""
        rec = self._active(sample_id)
        hours = validation.check_milling(hours)

        def step() -> Step[None]:
            yield from self.backend.transfer(rec, "balance", "mill")
            yield from self._mill(rec, hours)
        self.backend.execute(step(), sample_id)

    def press(self, sample_id: str) -> None:
        """Press the milled powder into a pellet; the crucible goes to the furnace."""
        rec = self._active(sample_id)

        def step() -> Step[None]:
            yield from self.backend.transfer(rec, "mill", "press")
            yield from self.backend.press(rec)
            yield from self.backend.transfer(rec, "press", "furnace")
        self.backend.execute(step(), sample_id)

    def fire(self, sample_ids: Sequence[str], programme: Programme, furnace: int | None = None) -> FurnaceLog:
        """Fire a load of crucibles with one programme (on ``furnace``, or the first free one)."""
        ids = validation.check_load_ids(sample_ids)
        recs = [self._active(s) for s in ids]
        validation.check_furnace(furnace, self.backend.n_furnaces)
        validation.check_programme(programme, self.caps)
        return self.backend.execute(self._fire(recs, programme, furnace), ids[0])

    def open_furnace(self, sample_ids: Sequence[str], atmosphere: str = "air",
                     furnace: int | None = None) -> FurnaceSession:
        """Put prepared crucibles in a furnace to be driven interval by interval
        (:class:`~synthgap.envs.lab.session.FurnaceSession`: ``hold``, then ``unload``)."""
        ids = validation.check_load_ids(sample_ids)
        recs = [self._active(s) for s in ids]
        validation.check_furnace(furnace, self.backend.n_furnaces)
        validation.check_atmosphere(atmosphere)
        handle = self.backend.execute(self.backend.open_firing(recs, atmosphere, furnace), ids[0])
        self._in_furnace.update(ids)
        return FurnaceSession(self.backend, self.caps, recs, handle, atmosphere, self._fired_load)

    def characterise(self, sample_id: str) -> Characterisation:
        """XRD and property of a fired sample; finishes the sample."""
        rec = self._active(sample_id)
        if sample_id not in self._fired:
            raise validation.not_fired(sample_id)
        self.backend.execute(self._measure(rec), sample_id)
        self._settle()
        self._finish(rec, self.backend.finished_status)
        self._unreported.remove(rec)
        return Characterisation(dict(rec.xrd_phase_fractions), rec.performance,
                                rec.instruments.get("xrd", ""), rec.instruments.get("property", ""))

    def telemetry(self, sample_id: str) -> dict[str, Any]:
        """The agent-visible record of a sample so far, as a flat dict (no truth)."""
        if sample_id not in self.records:
            raise LabInputError(f"unknown sample id {sample_id!r}")
        self._settle()
        return self.records[sample_id].to_row()

    def record(self, sample_id: str) -> SampleRecord:
        """The record of a sample (agent-visible fields)."""
        if sample_id not in self.records:
            raise LabInputError(f"unknown sample id {sample_id!r}")
        self._settle()
        return self.records[sample_id]

    # ------------------------------------------------------------------ output and lifetime
    def write(self, out_dir: str | Path, parquet: bool = True) -> dict[str, Path]:
        """Write every finished sample and firing as tidy tables (the truth tables only for a
        simulated backend); see :func:`~synthgap.envs.lab.records.write_records`."""
        self._settle()
        recs = [r for r in self.records.values() if r.status in FINISHED]
        return write_records(out_dir, recs, self.firings, getattr(self.backend, "usage", ()),
                             getattr(self.backend, "firing_truth", ()), parquet, truth=self.truth)

    def close(self) -> None:
        """Free the backend (ports, threads); idempotent."""
        if not self._closed:
            self._closed = True
            self.backend.close()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
