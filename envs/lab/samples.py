"""A sample's state inside the twin, and the batched chemistry and measurement of fired samples.

Chemistry is evaluated in batches (one :func:`synthgap.envs.chemistry.fire` call per group
of samples with the same number of trace steps) when records are handed out (end of
``run``, ``run_recipe``, ``characterise``, ``telemetry``); the XRD and property noise are
drawn at measurement time, so the random stream, and hence every record, does not depend
on when the batch is evaluated. The measurement model is
:mod:`synthgap.envs.lab.measurement`'s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from synthgap.envs.chemistry import ChemicalSystem, RecipeBatch, TemperatureTrace, fire

from .measurement import MeasurementModel
from .records import Characterisation, SampleRecord, SampleTruth

__all__ = ["SampleState", "evaluate", "measure"]


@dataclass(eq=False)
class SampleState:
    """What the twin knows of a sample beyond its record.

    Attributes:
        rec: the sample's record (the front-end's; the twin adds waits and instruments).
        truth: the simulator's truth about the sample (the twin's, beside the record).
        initial: (n_solids,) mol per mol of target intended, what was dispensed (dry).
        milling_time: hours actually milled, h.
        fired: fired successfully.
        kin_T, kin_dt: (S,) K and (S,) s, the true temperature steps the kinetics see.
        xrd_noise: (n_solids,) standard normals of the XRD scan, None before it.
        perf_noise: the standard normal of the property measurement.
        finalised: chemistry evaluated (the truth is filled in).
    """

    rec: SampleRecord
    initial: np.ndarray
    milling_time: float = 0.0
    fired: bool = False
    kin_T: np.ndarray | None = None
    kin_dt: np.ndarray | None = None
    xrd_noise: np.ndarray | None = None
    perf_noise: float = 0.0
    finalised: bool = False
    truth: SampleTruth = field(default_factory=SampleTruth)


def _rows(arrays: list[np.ndarray]) -> np.ndarray:
    """Stack 1-D arrays as rows (one array: a view, no copy)."""
    return arrays[0][None, :] if len(arrays) == 1 else np.stack(arrays)


def evaluate(system: ChemicalSystem, solids: Sequence[str], pending: list[SampleState],
             model: MeasurementModel) -> list[tuple[str, Characterisation]]:
    """Fire ``pending`` (fired, not yet evaluated) in batches and fill in their truth; return
    the measurements of those already scanned, (sample id, characterisation)."""
    out: list[tuple[str, Characterisation]] = []
    groups: dict[int, list[SampleState]] = {}
    for s in pending:
        groups.setdefault(s.kin_T.shape[0], []).append(s)
    for group in groups.values():
        recipes = [s.rec.recipe if s.rec.recipe.milling_time == s.milling_time
                   else replace(s.rec.recipe, milling_time=s.milling_time) for s in group]
        batch = RecipeBatch.from_recipes(system, recipes, validate=False)  # checked when submitted
        trace = TemperatureTrace(_rows([s.kin_T for s in group]), _rows([s.kin_dt for s in group]))
        fired = fire(system, batch, trace=trace, initial=_rows([s.initial for s in group]))
        for b, s in enumerate(group):
            s.finalised = True
            tr = s.truth
            tr.initial_mol = dict(zip(solids, s.initial.tolist(), strict=True))
            tr.phase_fractions = dict(zip(solids, fired.phase_fractions[b].tolist(),
                                          strict=True))
            tr.target_fraction = float(fired.target_fraction[b])
            tr.grain_size_um = float(fired.grain_size[b])
            tr.performance = float(fired.performance[b])
            # the kinetic steps when they are the logged steps; a live session's are coarser
            steps_K = s.kin_T if s.kin_T.shape == tr.trace_time_s.shape else tr.trace_K
            dwell_K = steps_K[s.rec.programme.dwell_mask(tr.trace_time_s)]
            tr.dwell_mean_K = float(dwell_K.sum()) / dwell_K.size if dwell_K.size else math.nan
            if s.xrd_noise is not None:
                out.append((s.rec.sample_id, measure(s, solids, model)))
    return out


def measure(st: SampleState, solids: Sequence[str], model: MeasurementModel) -> Characterisation:
    """Measured XRD fractions and property from the truth and the drawn noise."""
    true = np.array([st.truth.phase_fractions.get(p, 0.0) for p in solids])
    meas = model.xrd(true, st.xrd_noise)
    return Characterisation(dict(zip(solids, meas.tolist(), strict=True)),
                            model.property(st.truth.performance, st.perf_noise),
                            st.rec.instruments.get("xrd", ""), st.rec.instruments.get("property", ""))
