"""Planners that choose synthesis experiments, and the benchmark that compares them."""

from .benchmark import BenchmarkConfig, BenchmarkError, BenchmarkResult, run_benchmark
from .evaluator import Evaluator, lab_hours
from .oracle import OracleResult, buildable_performance, compute_oracle
from .planners import (
    PLANNERS,
    BudgetExhaustedError,
    ExperimentResult,
    LatinHypercubePlanner,
    OptunaPlanner,
    Planner,
    PlannerError,
    PolicyPlanner,
    RandomPlanner,
    SobolPlanner,
    Suggestion,
    SynthesisAwarePlanner,
    ThermoOnlyPlanner,
    UnknownSuggestionError,
    make_planner,
    thermodynamic_pick,
)
from .space import RecipeSpace, SpaceError

__all__ = [
    "BenchmarkConfig", "BenchmarkError", "BenchmarkResult", "run_benchmark",
    "OracleResult", "buildable_performance", "compute_oracle",
    "Evaluator", "lab_hours", "BudgetExhaustedError", "ExperimentResult", "Planner",
    "PlannerError", "PolicyPlanner", "Suggestion", "UnknownSuggestionError", "PLANNERS",
    "LatinHypercubePlanner", "OptunaPlanner", "RandomPlanner", "SobolPlanner",
    "SynthesisAwarePlanner", "ThermoOnlyPlanner", "make_planner", "thermodynamic_pick",
    "RecipeSpace", "SpaceError",
]
