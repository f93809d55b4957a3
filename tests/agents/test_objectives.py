"""Two objectives and failed syntheses: Pareto fronts, hypervolume, the planners that use them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from synthgap.agents.benchmark import BenchmarkConfig, run_benchmark
from synthgap.agents.evaluator import Evaluator
from synthgap.agents.objectives import hypervolume, pareto_front, reference_hours
from synthgap.agents.planners import MULTI_OBJECTIVE, infeasibility, make_planner
from synthgap.agents.space import RecipeSpace
from synthgap.envs.chemistry import Recipe, load_system
from synthgap.envs.chemistry.limits import RECIPE_BOUNDS
from synthgap.envs.lab.direct import lab_hours
from synthgap.envs.lab.measurement import SUCCESS_PURITY


def test_the_front_keeps_exactly_the_non_dominated_experiments():
    hours = [5.0, 2.0, 8.0, 2.0, 9.0, 3.0]
    frac = [0.6, 0.3, 0.9, 0.1, 0.9, 0.3]  # (2, 0.1) and (3, 0.3) dominated by (2, 0.3); (9, .9) by (8, .9)
    assert pareto_front(hours, frac).tolist() == [1, 0, 2]
    with pytest.raises(ValueError, match="same length"):
        pareto_front([1.0], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        pareto_front([np.nan], [0.1])


def test_hypervolume_is_the_staircase_area_in_the_reference_box():
    # (2 h, 0.5) and (6 h, 1.0) in a 10 h box: 0.5 x 8 + 0.5 x 4 = 6 of 10
    assert hypervolume([2.0, 6.0], [0.5, 1.0], ref_hours=10.0) == pytest.approx(0.6)
    assert hypervolume([2.0, 6.0, 7.0], [0.5, 1.0, 0.2], ref_hours=10.0) == pytest.approx(0.6)  # dominated: nothing
    assert hypervolume([12.0], [1.0], ref_hours=10.0) == 0.0  # slower than the box
    assert hypervolume([0.0], [1.5], ref_hours=10.0) == 1.0  # the oracle in no time: the whole box
    assert hypervolume([1.0], [-0.3], ref_hours=10.0) == 0.0
    with pytest.raises(ValueError, match="ref_hours must be a finite number > 0 h"):
        hypervolume([1.0], [0.5], ref_hours=0.0)


@pytest.mark.parametrize("seed", range(5))
def test_hypervolume_agrees_with_counting_a_fine_grid(seed):
    rng = np.random.default_rng(seed)
    hours, frac = rng.uniform(0, 12, 15), rng.uniform(-0.1, 1.1, 15)
    H, F = np.meshgrid(np.linspace(0, 10, 801)[:-1] + 10 / 1600, np.linspace(0, 1, 801)[:-1] + 1 / 1600)
    covered = np.zeros(H.shape, dtype=bool)
    for h, f in zip(hours, frac, strict=True):
        if h <= 10:
            covered |= (H >= h) & (F <= f)
    assert hypervolume(hours, frac, ref_hours=10.0) == pytest.approx(covered.mean(), abs=3e-3)


def test_the_reference_corner_is_the_slowest_recipe_the_limits_allow():
    b = RECIPE_BOUNDS
    fast = Recipe("X", ("Y",), milling_time=b["milling_time"][0], ramp_rate=b["ramp_rate"][1],
                  dwell_temperature=b["dwell_temperature"][0], dwell_time=b["dwell_time"][0],
                  cooling_rate=b["cooling_rate"][1])
    assert lab_hours(fast) < 3.0 < 100.0 < reference_hours()  # min rates are 1 K/min: a day each way


@pytest.fixture(scope="module")
def told():
    """Campaigns of the two-objective and the feasibility-aware planners on the direct lab."""
    system = load_system("BaTiO3")
    out = {}
    for name in ("gp_feasible", *MULTI_OBJECTIVE):
        planner = make_planner(name, RecipeSpace(system), 7, seed=1)
        ev, rng = Evaluator(system), np.random.default_rng(0)
        while planner.remaining:
            (s,) = planner.ask(1)
            planner.tell(s.id, ev.evaluate(s.recipe, rng))
        out[name] = planner
    return out


def test_the_feasibility_aware_gp_tells_how_far_each_synthesis_was_from_forming(told):
    planner = told["gp_feasible"]
    for (s, result), trial in zip(planner.history, planner.study.trials, strict=True):
        c = trial.constraints["infeasibility"]
        assert c == pytest.approx(infeasibility(s, result))
        assert (c <= 0) == result.success  # feasible exactly when the target was the majority phase
        assert c == pytest.approx(SUCCESS_PURITY - result.phase_fractions.get("BaTiO3", 0.0))
    assert any(t.constraints["infeasibility"] > 0 for t in planner.study.trials)  # a failure was seen


@pytest.mark.parametrize("name", MULTI_OBJECTIVE)
def test_multi_objective_planners_maximise_performance_and_minimise_lab_hours(told, name):
    planner = told[name]
    assert [d.name for d in planner.study.directions] == ["MAXIMIZE", "MINIMIZE"]
    for (_, result), trial in zip(planner.history, planner.study.trials, strict=True):
        assert trial.values == pytest.approx([result.performance, result.lab_hours])


def test_the_benchmark_reports_failures_hypervolume_and_draws_their_figures(tmp_path):
    config = BenchmarkConfig(systems=("BaTiO3",), planners=("random", "gp", "gp_feasible", "gp_mo"), seeds=2,
                             budget=6, out=str(tmp_path / "out"), workers=2, oracle_samples=2000, progress=False)
    result = run_benchmark(config)
    out = Path(config.out)
    oracle = json.loads(next((out / "oracle").glob("BaTiO3__*.json")).read_text())["value"]
    for row in result.summary:
        cells = [json.loads(p.read_text()) for p in (out / "cells").glob(f"BaTiO3__{row['planner']}__*.json")]
        fails = [sum(not e["success"] for e in c["experiments"]) for c in cells]
        hv = [hypervolume([e["lab_hours"] for e in c["experiments"]],
                          np.array([e["buildable"] for e in c["experiments"]]) / oracle) for c in cells]
        assert row["failures_mean"] == pytest.approx(np.mean(fails))
        assert row["hypervolume_mean"] == pytest.approx(np.mean(hv)) and 0 <= row["hypervolume_mean"] <= 1
        assert row["failures_ci_low"] <= row["failures_mean"] <= row["failures_ci_high"]
        assert np.isnan(row["p_failures_vs_gp"]) == (row["planner"] == "gp")
    assert {r["best_bo"] for r in result.summary} <= {"gp", "gp_feasible", "gp_mo"}
    for fig in ("failures", "pareto"):
        assert Path(result.files[fig]).stat().st_size > 10_000
    md = (out / "summary.md").read_text()
    assert "failed syntheses per campaign (mean, count)" in md and "hypervolume (mean, fraction of the box)" in md
    assert f"{reference_hours():.4g} h" in md and "relative permittivity (dimensionless)" in md
