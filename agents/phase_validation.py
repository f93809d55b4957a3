"""Scoring predicted phase assemblages against observed firings, and the baselines a model must beat.

A prediction is ``{phase: weight fraction}`` for one :class:`ObservedFiring`. The metrics
(one definition for every model):

- ``target_mae``: mean absolute error of the target's weight fraction;
- ``jaccard``: mean Jaccard overlap of the phase sets, a phase counting when its weight
  fraction exceeds :data:`PHASE_THRESHOLD` (2 wt%, about XRD's detection limit; two empty
  sets overlap fully);
- ``pure_precision``, ``pure_recall``: for the question "is this firing pure target?",
  pure meaning no other phase above the threshold and the target above it (``None``
  when nothing was predicted, or observed, pure).

Models are compared cross-validated by precursor set (:func:`leave_one_set_out`: fitted
on every other set, scored on the held-out one) and in sample (fitted on every row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from synthgap.envs.chemistry.observed import ObservedFiring

__all__ = ["PHASE_THRESHOLD", "Prediction", "phase_set", "jaccard", "is_pure", "score", "leave_one_set_out",
           "in_sample", "TemperatureMean", "ZeroKelvinHull"]

PHASE_THRESHOLD = 0.02  # weight fraction above which a phase counts as present
Prediction = dict[str, float]
#: a model: fitted on observed firings, it returns a predictor of one firing's assemblage
Fit = Callable[[Sequence[ObservedFiring]], Callable[[ObservedFiring], Prediction]]


def phase_set(fractions: Prediction, threshold: float = PHASE_THRESHOLD) -> frozenset[str]:
    """The phases above ``threshold`` (weight fraction)."""
    return frozenset(p for p, f in fractions.items() if f > threshold)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b| (1 for two empty sets)."""
    union = a | b
    return 1.0 if not union else len(a & b) / len(union)


def is_pure(fractions: Prediction, target: str, threshold: float = PHASE_THRESHOLD) -> bool:
    """Only the target is present: it is above ``threshold`` and nothing else is."""
    return phase_set(fractions, threshold) == {target}


def score(firings: Sequence[ObservedFiring], predictions: Sequence[Prediction], target: str) -> dict:
    """The metrics of ``predictions`` (one per firing, same order) against what was measured.

    Raises:
        ValueError: no firings, or not one prediction per firing.
    """
    if not firings or len(firings) != len(predictions):
        raise ValueError(f"need one prediction per firing, got {len(predictions)} for {len(firings)}")
    errors = [abs(p.get(target, 0.0) - f.fraction(target)) for f, p in zip(firings, predictions, strict=True)]
    overlaps = [jaccard(phase_set(p), phase_set(f.phases)) for f, p in zip(firings, predictions, strict=True)]
    predicted = np.array([is_pure(p, target) for p in predictions])
    observed = np.array([is_pure(f.phases, target) for f in firings])
    hits = int(np.sum(predicted & observed))
    return {"target_mae": float(np.mean(errors)), "jaccard": float(np.mean(overlaps)),
            "pure_precision": hits / int(predicted.sum()) if predicted.any() else None,
            "pure_recall": hits / int(observed.sum()) if observed.any() else None,
            "pure_predicted": int(predicted.sum()), "pure_observed": int(observed.sum()), "rows": len(firings)}


def leave_one_set_out(firings: Sequence[ObservedFiring], fit: Fit) -> list[Prediction]:
    """Each firing predicted by the model fitted on the firings of every *other* precursor set.

    Raises:
        ValueError: fewer than two precursor sets (nothing to hold out).
    """
    groups = {f.precursor_set for f in firings}
    if len(groups) < 2:
        raise ValueError(f"cross-validation by precursor set needs two sets or more, got {len(groups)}")
    predictors = {g: fit([f for f in firings if f.precursor_set != g]) for g in groups}
    return [predictors[f.precursor_set](f) for f in firings]


def in_sample(firings: Sequence[ObservedFiring], fit: Fit) -> list[Prediction]:
    """Each firing predicted by the model fitted on all of them."""
    predict = fit(firings)
    return [predict(f) for f in firings]


@dataclass(frozen=True)
class TemperatureMean:
    """The temperature-only baseline: at each firing temperature, the training rows' mean
    weight fraction of every phase (a phase absent from a row counts 0 there).

    It knows nothing of the precursors, so a model earns its chemistry by beating it. At a
    temperature with no training row it predicts the mean over all training rows.
    """

    name: str = "temperature_only"

    def __call__(self, train: Sequence[ObservedFiring]) -> Callable[[ObservedFiring], Prediction]:
        if not train:
            raise ValueError("the temperature-only baseline needs at least one training firing")

        def mean(rows: Sequence[ObservedFiring]) -> Prediction:
            phases = sorted({p for f in rows for p in f.phases})
            return {p: float(np.mean([f.fraction(p) for f in rows])) for p in phases}

        by_t = {t: mean([f for f in train if f.temperature_K == t]) for t in {f.temperature_K for f in train}}
        overall = mean(train)
        return lambda firing: by_t.get(firing.temperature_K, overall)


@dataclass(frozen=True)
class ZeroKelvinHull:
    """The 0 K hull's answer: the target, pure, from every precursor set at every temperature.

    With the target on the 0 K hull and the precursors weighed to its composition, the
    0 K equilibrium of the mix is the target (and gases). For the shipped YBCO campaign the
    premise is data: every precursor set's reaction to YBa2Cu3O6.5 is downhill in
    ``precursor_sets.csv`` (-685 to -78 meV/atom, Materials Project energies as the study
    computed them; a test reads them). It learns nothing from training rows.
    """

    target: str
    name: str = "zero_kelvin_hull"

    def __call__(self, train: Sequence[ObservedFiring]) -> Callable[[ObservedFiring], Prediction]:
        return lambda firing: {self.target: 1.0}
