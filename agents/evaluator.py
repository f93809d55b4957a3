"""A stand-in for the lab: fire a recipe with a drifting furnace and measure the sample.

:class:`Evaluator` is the one thing a benchmark asks for results. It is deliberately
small: ``evaluate(recipe, rng) -> ExperimentResult``. :class:`LabTwinEvaluator` puts the
lab twin (``envs/lab``: queues, furnace scheduling, weighing errors) behind the same
method (``synthgap benchmark --evaluator twin``); planners and metrics never see the
difference.

What it models:

* a furnace offset per experiment, N(0, ``offset_sd``), shifting the whole programme in
  proportion to its height above room temperature (0 at room temperature, full at the
  dwell), plus per-step temperature noise N(0, ``trace_noise_sd``);
* measurement: the lab's measurement model (:mod:`synthgap.envs.lab.measurement`, the
  twin's and the emulators' too), and its success threshold ``SUCCESS_PURITY``;
* lab time: :func:`lab_hours`.
"""

from __future__ import annotations

import numpy as np

from synthgap.envs.chemistry import (
    ChemicalSystem,
    Recipe,
    RecipeBatch,
    TemperatureTrace,
    fire,
    load_system,
    programme_trace,
)
from synthgap.envs.chemistry.recipe import ROOM_TEMPERATURE
from synthgap.envs.lab.measurement import SUCCESS_PURITY, MeasurementModel, lab_measurement
from synthgap.envs.lab.thermal import FURNACE_OFFSET_SD_K

from .planners.base import ExperimentResult

HANDLING_HOURS = 1.5  # h: weighing and loading (0.5) plus XRD and property measurement (1.0)


def lab_hours(recipes: RecipeBatch | Recipe, handling: float = HANDLING_HOURS) -> np.ndarray | float:
    """Lab time of recipes, h: milling + ramp + dwell + cooling + fixed handling overheads."""
    single = isinstance(recipes, Recipe)
    if single:
        r = recipes
        span = r.dwell_temperature - ROOM_TEMPERATURE
        return float(r.milling_time + span / r.ramp_rate / 60.0 + r.dwell_time
                     + span / r.cooling_rate / 60.0 + handling)
    b = recipes
    span = b.dwell_temperature - ROOM_TEMPERATURE
    return (b.milling_time + span / b.ramp_rate / 60.0 + b.dwell_time
            + span / b.cooling_rate / 60.0 + handling)


def shifted_trace(batch: RecipeBatch, offset: np.ndarray, noise: np.ndarray | None = None
                  ) -> TemperatureTrace:
    """The programmed traces of ``batch`` with furnace offsets (B,) K and step noise (B, S) K.

    The offset scales with the height above room temperature, so the sample still starts
    and ends at room temperature while the dwell sits ``offset`` off its setpoint.
    """
    prog = programme_trace(batch)
    span = (batch.dwell_temperature - ROOM_TEMPERATURE)[:, None]
    height = (prog.temperature - ROOM_TEMPERATURE) / np.maximum(span, 1e-9)
    T = prog.temperature + np.asarray(offset, dtype=float)[:, None] * height
    if noise is not None:
        T = T + noise * height
    return TemperatureTrace(np.maximum(T, ROOM_TEMPERATURE), prog.dt)


class Evaluator:
    """Fire one recipe in a noisy furnace and measure it (a stand-in for the lab twin).

    Args:
        system: the chemical system (object, bundled name or file path).
        offset_sd: furnace offset per experiment, K.
        trace_noise_sd: temperature noise per integration step, K.
        measurement: XRD and property noise, XRD detection limit; default the lab's
            (:func:`~synthgap.envs.lab.measurement.lab_measurement`).
    """

    def __init__(self, system: ChemicalSystem | str, offset_sd: float = FURNACE_OFFSET_SD_K,
                 trace_noise_sd: float = 3.0, measurement: MeasurementModel | None = None):
        self.system = load_system(system) if isinstance(system, str) else system
        self.offset_sd = offset_sd
        self.trace_noise_sd = trace_noise_sd
        self.measurement = measurement if measurement is not None else lab_measurement()

    def evaluate(self, recipe: Recipe, rng: np.random.Generator) -> ExperimentResult:
        """Run one experiment; every random draw comes from ``rng``."""
        batch = RecipeBatch.from_recipes(self.system, [recipe])  # validates the recipe
        prog = programme_trace(batch)
        offset = rng.normal(0.0, self.offset_sd, 1)
        noise = rng.normal(0.0, self.trace_noise_sd, prog.temperature.shape)
        sample = fire(self.system, batch, trace=shifted_trace(batch, offset, noise))
        perf = self.measurement.property(sample.performance[0], rng.standard_normal())
        frac = self.measurement.xrd(sample.phase_fractions[0], rng.standard_normal(len(sample.phases)))
        fractions = {p: float(f) for p, f in zip(sample.phases, frac, strict=True) if f > 0}
        return ExperimentResult(
            performance=perf,
            phase_fractions=fractions,
            success=fractions.get(recipe.target, 0.0) >= SUCCESS_PURITY,
            lab_hours=float(lab_hours(recipe)),
        )


class LabTwinEvaluator:
    """The lab twin (:class:`synthgap.envs.lab.simlab.SimLab`) behind the evaluator interface.

    One twin per campaign, created at the first experiment with a seed drawn from that
    experiment's ``rng`` (the twin then draws its own noise: drifts, weighing, queues).
    Lab hours are the twin's clock from start to finish of each sample; a furnace
    breakdown (status ``"failed"``) is reported as a failed experiment with no XRD.

    Args:
        system: the chemical system (object, bundled name or file path).
        n_furnaces: furnaces of the twin.
    """

    def __init__(self, system: ChemicalSystem | str, n_furnaces: int = 4):
        self.system = load_system(system) if isinstance(system, str) else system
        self.n_furnaces = n_furnaces
        self.lab = None

    def evaluate(self, recipe: Recipe, rng: np.random.Generator) -> ExperimentResult:
        from synthgap.envs.lab.simlab import SimLab

        if self.lab is None:
            self.lab = SimLab(self.system, n_furnaces=self.n_furnaces,
                              seed=int(rng.integers(2**31 - 1)))
        rec = self.lab.run_recipe(recipe)
        fractions = {p: float(f) for p, f in (rec.xrd_phase_fractions or {}).items() if f > 0}
        ok = rec.status == "done"
        return ExperimentResult(
            performance=float(rec.performance or 0.0) if ok else 0.0,
            phase_fractions=fractions if ok else {},
            success=ok and fractions.get(recipe.target, 0.0) >= SUCCESS_PURITY,
            lab_hours=float(rec.finished_s - rec.started_s) / 3600.0,
        )


#: name -> evaluator factory(system); ``--evaluator`` of the benchmark.
EVALUATORS = {"simple": Evaluator, "twin": LabTwinEvaluator}
