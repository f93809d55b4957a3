"""Planner contract: ask/tell by id, budget, pending suggestions, unknown ids; the space."""

import numpy as np
import pytest

from synthgap.agents import (
    PLANNERS,
    BudgetExhaustedError,
    Evaluator,
    ExperimentResult,
    PlannerError,
    PolicyPlanner,
    RecipeSpace,
    SynthesisAwarePlanner,
    UnknownSuggestionError,
    lab_hours,
    make_planner,
    thermodynamic_pick,
)
from synthgap.envs.chemistry import Recipe, load_system, random_recipes, validate_recipe
from synthgap.envs.lab.direct import LOADING_S, MEASURING_S
from synthgap.envs.recipe_space import SpaceError


@pytest.fixture(scope="module")
def space():
    return RecipeSpace(load_system("BaTiO3"))


def result(perf=1.0, fractions=None, success=True, hours=5.0):
    return ExperimentResult(perf, fractions or {"BaTiO3": 1.0}, success, hours)


@pytest.mark.parametrize("name", list(PLANNERS))
def test_ask_tell_by_id_with_pending(space, name):
    evaluator = Evaluator(space.system)
    planner = make_planner(name, space, budget=6, seed=1)
    first = planner.ask(2)
    assert len({s.id for s in first}) == 2 and len(planner.pending) == 2
    for s in first:
        validate_recipe(space.system, s.recipe)
        assert s.x.shape == (space.d,)
    second = planner.ask(1)  # more asked while two are still in the furnace
    assert len(planner.pending) == 3
    rng = np.random.default_rng(0)
    for s in reversed(first + second):  # results come back in any order
        planner.tell(s.id, evaluator.evaluate(s.recipe, rng))
    assert planner.pending == () and len(planner.history) == 3
    rest = planner.ask(3)
    assert planner.remaining == 0
    assert len({s.id for s in first + second + rest}) == 6
    with pytest.raises(BudgetExhaustedError, match="only 0 of the budget of 6 remain"):
        planner.ask(1)


def test_budget_unknown_and_double_tell(space):
    planner = make_planner("random", space, budget=3, seed=0)
    with pytest.raises(BudgetExhaustedError, match="asked for 4 suggestion"):
        planner.ask(4)
    (s,) = planner.ask(1)
    with pytest.raises(UnknownSuggestionError, match="unknown suggestion id 'nope'"):
        planner.tell("nope", result())
    planner.tell(s.id, result())
    with pytest.raises(UnknownSuggestionError, match="already told"):
        planner.tell(s.id, result())
    with pytest.raises(PlannerError, match="n must be a positive integer"):
        planner.ask(0)
    with pytest.raises(PlannerError, match="ExperimentResult"):
        planner.tell(planner.ask(1)[0].id, {"performance": 1})
    with pytest.raises(PlannerError, match="budget must be a positive integer"):
        make_planner("random", space, budget=0)
    with pytest.raises(PlannerError, match="unknown planner 'magic'"):
        make_planner("magic", space, budget=3)
    assert isinstance(BudgetExhaustedError("x"), ValueError)


def test_space_round_trip_and_bounds(space):
    batch = random_recipes(space.system, 200, np.random.default_rng(0))
    X = space.encode_batch(batch)
    assert X.shape == (200, space.d) and X.min() >= 0 and X.max() <= 1
    back = space.decode_batch(X)
    for f in ("dwell_temperature", "dwell_time", "ramp_rate", "excess", "target", "atmosphere"):
        np.testing.assert_allclose(getattr(back, f), getattr(batch, f))
    for corner in (np.zeros(space.d), np.ones(space.d)):
        validate_recipe(space.system, space.decode(corner))
    restricted = RecipeSpace(space.system, targets=["BaTiO3"])
    assert {t for t, _ in restricted.routes} == {"BaTiO3"}


def test_decode_one_point_is_row_of_decode_batch(space):
    """The scalar path a campaign step takes gives the batch path's recipe (to one ulp)."""
    X = np.random.default_rng(3).random((500, space.d))
    X[:40] = np.round(X[:40])  # corners and bin edges
    batch = space.decode_batch(X)
    for i in range(len(X)):
        one, row = space.decode(X[i]).to_dict(), batch.recipe(space.system, i).to_dict()
        assert {k: v for k, v in one.items() if not isinstance(v, float)} == \
            {k: v for k, v in row.items() if not isinstance(v, float)}
        for k, v in one.items():
            if isinstance(v, float):
                assert v == pytest.approx(row[k], rel=1e-15, abs=0)
    with pytest.raises(SpaceError, match=r"shape \(8,\)"):
        space.decode(np.zeros(3))
    with pytest.raises(SpaceError, match="finite"):
        space.decode(np.full(space.d, np.nan))


def test_policy_planner_hook(space):
    seen = []

    def policy(obs):
        seen.append(obs["x"].shape)
        return np.full(space.d, 0.5)

    planner = PolicyPlanner(space, budget=2, policy=policy)
    (s,) = planner.ask(1)
    planner.tell(s.id, result())
    planner.ask(1)
    assert seen == [(0, space.d), (1, space.d)]
    assert s.recipe == space.decode(np.full(space.d, 0.5))


def test_thermodynamic_pick_is_the_unobtainium():
    picks = {n: thermodynamic_pick(RecipeSpace(load_system(n)))
             for n in ("BaTiO3", "LiMn2O4", "MgAl2O4")}
    assert picks == {"BaTiO3": "Ba3Ti2O7", "LiMn2O4": "Li4Mn5O12", "MgAl2O4": "MgAl2O4"}


def test_synthesis_aware_learns_traps_and_gives_up(space):
    trapped = {"Ba2TiO4": 0.6, "BaCO3": 0.2, "TiO2": 0.2}
    planner = SynthesisAwarePlanner(space, budget=10, seed=0)
    (s,) = planner.ask(1)
    assert s.recipe.target == "Ba3Ti2O7"  # optimistic first: the highest theoretical value
    planner.tell(s.id, result(0.0, trapped, success=False))
    assert planner.traps[("BaCO3", "TiO2")][0][2] == ("Ba2TiO4",)
    (s2,) = planner.ask(1)
    # the trap is shared by every target made from BaCO3 + TiO2: switch precursors
    assert (s2.recipe.target, s2.recipe.precursors) == ("BaTiO3", ("BaO", "TiO2"))

    quitter = SynthesisAwarePlanner(space, budget=10, seed=0, target_patience=2)
    batch = quitter.ask(2)
    assert [b.recipe.target for b in batch] == ["Ba3Ti2O7"] * 2
    for b in batch:
        quitter.tell(b.id, result(0.0, trapped, success=False))
    assert quitter.active_targets() == ["BaTiO3"]
    assert all(b.recipe.target == "BaTiO3" for b in quitter.ask(3))


def test_evaluator_is_seeded_and_counts_hours():
    system = load_system("BaTiO3")
    r = Recipe("BaTiO3", ("BaO", "TiO2"), dwell_temperature=1473.0, dwell_time=2.0,
               milling_time=1.0, ramp_rate=10.0, cooling_rate=5.0)
    ev = Evaluator(system)
    a = ev.evaluate(r, np.random.default_rng(3))
    b = ev.evaluate(r, np.random.default_rng(3))
    assert a == b
    assert abs(sum(a.phase_fractions.values()) - 1) < 1e-9
    span = 1473.0 - 298.15
    expected = 1.0 + span / 10 / 60 + 2.0 + span / 5 / 60 + (LOADING_S + MEASURING_S) / 3600
    assert a.lab_hours == pytest.approx(expected)
    assert lab_hours(r) == pytest.approx(expected)
