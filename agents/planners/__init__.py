"""Experiment planners behind one ask/tell interface, and the registry of their names.

A campaign is a loop of :meth:`~.base.Planner.ask` and :meth:`~.base.Planner.tell`::

    planner = make_planner("tpe", RecipeSpace(system), budget=30, seed=0)
    while planner.remaining:
        for s in planner.ask(2):                         # may stay pending for a while
            planner.tell(s.id, evaluator.evaluate(s.recipe, rng))

Modules: :mod:`.base` (the interface: budget and id bookkeeping, results, errors, the RL
policy adapter), :mod:`.sampling` (designs that ignore results), :mod:`.optuna` (Bayesian
optimisation through Optuna), :mod:`.heuristics` (planners that bring chemistry) and
:mod:`.registry` (planners by name).

======================  ===============================================================
name                    what it does
======================  ===============================================================
``random``              uniform points of the unit box
``sobol``               scrambled Sobol points (scipy.stats.qmc), in sequence
``lhs``                 a Latin hypercube of the whole budget (scipy.stats.qmc)
``tpe``                 Optuna TPE through ``study.ask()`` / ``study.tell()``
``gp``                  Optuna's Gaussian-process sampler, same API
``gp_feasible``         the GP with failed syntheses as an unknown constraint (a second
                        GP on how far the target was from forming, as Atlas does)
``nsga2``               Optuna NSGA-II on two objectives: performance and lab hours
``gp_mo``               Optuna's GP sampler on the same two objectives
``thermo_only``         the traditional AI: trusts the 0 K hull, picks the on-hull target
                        of highest theoretical performance, then runs TPE on its recipes
``synthesis_aware``     ARROWS-style heuristic: learns trapping intermediates from XRD of
                        failures, switches precursor sets, raises temperature and
                        milling, gives up on targets that keep failing, refines inside
                        the chosen route with a Gaussian process (scikit-learn)
======================  ===============================================================

:func:`make_planner` builds one by name; :data:`PLANNERS` is the registry; beside its names
a spec may be ``policy:models:/NAME@ALIAS`` (a trained Campaign-v0 policy,
:class:`CampaignPolicyPlanner`) or ``module:Class`` (your own :class:`Planner` subclass).
"""

from .base import (
    BudgetExhaustedError,
    ExperimentResult,
    Planner,
    PlannerError,
    PolicyPlanner,
    Proposal,
    Suggestion,
    UnknownSuggestionError,
)
from .heuristics import ON_HULL_TOLERANCE, SynthesisAwarePlanner, ThermoOnlyPlanner, thermodynamic_pick
from .optuna import MULTI_OBJECTIVE, OptunaPlanner, infeasibility, robustness
from .policy import CampaignPolicyPlanner
from .registry import PLANNERS, make_planner, planner_factory
from .sampling import LatinHypercubePlanner, RandomPlanner, SobolPlanner

__all__ = [
    "BudgetExhaustedError", "ExperimentResult", "Planner", "PlannerError", "PolicyPlanner", "Proposal",
    "Suggestion", "UnknownSuggestionError", "ON_HULL_TOLERANCE", "SynthesisAwarePlanner", "ThermoOnlyPlanner",
    "thermodynamic_pick", "MULTI_OBJECTIVE", "OptunaPlanner", "infeasibility", "robustness", "PLANNERS",
    "make_planner",
    "planner_factory", "CampaignPolicyPlanner", "LatinHypercubePlanner",
    "RandomPlanner", "SobolPlanner",
]
