"""The benchmark's labs: run a recipe on a lab and hand back what the lab measured.

:class:`Evaluator` is the one thing a benchmark asks for results:
``evaluate(recipe, rng) -> ExperimentResult``. It runs each experiment through the lab
front-end (:class:`~synthgap.envs.lab.frontend.Lab`) on the direct backend
(:class:`~synthgap.envs.lab.direct.DirectBackend`: a furnace offset per firing, step noise,
the lab's measurement model, nominal durations; every draw from the experiment's ``rng``).
:class:`LabTwinEvaluator` puts the SimPy twin behind the same method
(``synthgap benchmark --evaluator twin``); planners and metrics never see the difference.
A result's success is :data:`~synthgap.envs.lab.measurement.SUCCESS_PURITY` of the target
as measured.
"""

from __future__ import annotations

import math

import numpy as np

from synthgap.envs.chemistry import ChemicalSystem, Recipe, load_system
from synthgap.envs.lab.direct import TRACE_NOISE_SD_K, DirectBackend, lab_hours
from synthgap.envs.lab.frontend import Lab
from synthgap.envs.lab.measurement import SUCCESS_PURITY, MeasurementModel, lab_measurement
from synthgap.envs.lab.records import SampleRecord
from synthgap.envs.lab.thermal import FURNACE_OFFSET_SD_K
from synthgap.envs.lab.world import World
from synthgap.envs.reward import Outcome

from .planners.base import ExperimentResult

__all__ = ["Evaluator", "LabTwinEvaluator", "EVALUATORS", "lab_hours", "result_of"]


def result_of(rec: SampleRecord) -> ExperimentResult:
    """What a planner learns from a lab's record: measured performance and phases, success,
    lab hours (a failed firing: no phases, performance 0, not a success)."""
    outcome = Outcome.of(rec)  # the envs' reading of a record: one definition of a failed experiment
    fractions = {} if outcome.failed else {p: float(f) for p, f in rec.xrd_phase_fractions.items() if f > 0}
    tc = rec.tc_summary or {}
    logged = {"tc_dwell_mean_K": tc.get("tc_dwell_mean_K", math.nan),
              "tc_dwell_std_K": tc.get("tc_dwell_std_K", math.nan), "humidity": rec.humidity,
              "wait_h": sum(rec.waits_s.values()) / 3600.0 if rec.waits_s else math.nan}
    return ExperimentResult(
        performance=outcome.performance,
        phase_fractions=fractions,
        success=not outcome.failed and outcome.target_fraction >= SUCCESS_PURITY,
        lab_hours=outcome.lab_hours,
        telemetry={k: float(v) for k, v in logged.items() if math.isfinite(v)},
    )


class Evaluator:
    """Run one recipe on the direct lab and measure it.

    Args:
        system: the chemical system (object, bundled name or file path).
        offset_sd: furnace offset per experiment, K.
        trace_noise_sd: temperature noise per integration step, K.
        measurement: XRD and property noise, XRD detection limit; default the lab's
            (:func:`~synthgap.envs.lab.measurement.lab_measurement`).
    """

    def __init__(self, system: ChemicalSystem | str, offset_sd: float = FURNACE_OFFSET_SD_K,
                 trace_noise_sd: float = TRACE_NOISE_SD_K, measurement: MeasurementModel | None = None,
                 world: World | None = None):
        self.system = load_system(system) if isinstance(system, str) else system
        #: the lab's hidden world (its chemistry and furnace-offset scale), None: the nominal one. PRIVILEGED
        self.world = world
        self.offset_sd = offset_sd * (world.draws.get("lab_scales", {}).get("offset_sd", 1.0) if world else 1.0)
        self.trace_noise_sd = trace_noise_sd
        self.measurement = measurement if measurement is not None else lab_measurement()

    def lab(self, rng: np.random.Generator) -> Lab:
        """A fresh direct lab drawing from ``rng``."""
        return Lab(DirectBackend(self.system, rng=rng, offset_sd_K=self.offset_sd,
                                 trace_noise_sd_K=self.trace_noise_sd, measurement=self.measurement,
                                 truth_system=self.world.system if self.world is not None else None))

    def evaluate(self, recipe: Recipe, rng: np.random.Generator) -> ExperimentResult:
        """Run one experiment; every random draw comes from ``rng``."""
        return result_of(self.lab(rng).run_recipe(recipe))


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

    def __init__(self, system: ChemicalSystem | str, n_furnaces: int = 4, world: World | None = None):
        self.system = load_system(system) if isinstance(system, str) else system
        self.n_furnaces = n_furnaces
        self.world = world  # PRIVILEGED: the twin's hidden world, None: the nominal one
        self.lab = None

    def evaluate(self, recipe: Recipe, rng: np.random.Generator) -> ExperimentResult:
        """Run one experiment on this campaign's twin (made at the first call)."""
        from synthgap.envs.lab.simlab import SimLab

        if self.lab is None:
            self.lab = SimLab(self.system, n_furnaces=self.n_furnaces, seed=int(rng.integers(2**31 - 1)),
                              world=self.world)
        return result_of(self.lab.run_recipe(recipe))


#: name -> evaluator factory(system); ``--evaluator`` of the benchmark.
EVALUATORS = {"simple": Evaluator, "twin": LabTwinEvaluator}
