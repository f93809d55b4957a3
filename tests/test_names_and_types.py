"""Names and types (issue 11, item 6): one ConfigError, checked statuses, a planners package,
callbacks that do not borrow SB3's names, recipe fields that state their units."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
from numpy.typing import NDArray

import synthgap.agents as agents
from synthgap.envs.chemistry import Recipe, load_system
from synthgap.envs.chemistry.recipe import RECIPE_BOUNDS
from synthgap.envs.lab.records import SAMPLE_STATUSES, SampleRecord, sample_status

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for d in ("envs", "agents", "hardware", "experiments") for p in (ROOT / d).rglob("*.py")]

#: Every public name of the old agents/planner.py and agents/planners.py.
OLD_PLANNER_NAMES = [
    "BudgetExhaustedError", "ExperimentResult", "Planner", "PlannerError", "PolicyPlanner", "Proposal",
    "Suggestion", "UnknownSuggestionError", "ON_HULL_TOLERANCE", "PLANNERS", "LatinHypercubePlanner",
    "OptunaPlanner", "RandomPlanner", "SobolPlanner", "SynthesisAwarePlanner", "ThermoOnlyPlanner",
    "make_planner", "robustness", "thermodynamic_pick",
]


def test_every_old_planner_name_imports_from_the_package():
    planners = importlib.import_module("synthgap.agents.planners")
    missing = [n for n in OLD_PLANNER_NAMES if not hasattr(planners, n)]
    assert missing == []
    for name in OLD_PLANNER_NAMES:
        if hasattr(agents, name):
            assert getattr(agents, name) is getattr(planners, name), name
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("synthgap.agents.planner")


def test_the_registry_builds_every_planner_by_name():
    from synthgap.agents.planners import PLANNERS, Planner, PlannerError, make_planner
    from synthgap.agents.space import RecipeSpace

    assert list(PLANNERS) == ["random", "sobol", "lhs", "tpe", "gp", "gp_feasible", "nsga2", "gp_mo", "thermo_only",
                             "synthesis_aware"]
    space = RecipeSpace(load_system("BaTiO3"))
    for name in PLANNERS:
        planner = make_planner(name, space, budget=4, seed=0)
        assert isinstance(planner, Planner) and planner.name == name
        (s,) = planner.ask(1)
        assert s.id == f"{name}-0000" and planner.remaining == 3
    with pytest.raises(PlannerError, match="unknown planner 'bo'; choose from random, sobol"):
        make_planner("bo", space, 4)


def test_callbacks_do_not_reuse_sb3_class_names():
    import stable_baselines3.common.callbacks as sb3

    from synthgap.agents.rl import callbacks

    ours = {n for n, v in vars(callbacks).items() if inspect.isclass(v) and v.__module__ == callbacks.__name__}
    assert {"PeriodicEvaluation", "ResumableCheckpoints"} <= ours
    assert ours & set(vars(sb3)) == set()


def test_one_config_error_for_every_layer():
    from synthgap.agents.rl.config import ConfigError as training
    from synthgap.envs.userfiles import ConfigError
    from synthgap.hardware.errors import ConfigError as lab_file

    assert training is ConfigError and lab_file is ConfigError and issubclass(ConfigError, ValueError)
    defined = [p.relative_to(ROOT).as_posix() for p in SOURCES
               for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
               if isinstance(node, ast.ClassDef) and node.name == "ConfigError"]
    assert defined == ["envs/userfiles.py"]


def test_a_record_from_data_must_have_a_known_status():
    from synthgap.hardware.lab import record_from_dict, record_to_dict

    recipe = Recipe("BaTiO3", ("BaCO3", "TiO2"))
    for status in SAMPLE_STATUSES:
        assert record_from_dict(record_to_dict(SampleRecord("S-1", "", recipe, status))).status == status
    data = record_to_dict(SampleRecord("S-1", "", recipe, "done"))
    for bad in ("finished", "DONE", None, 1):
        data["status"] = bad
        with pytest.raises(ValueError, match="record.status: unknown sample status .*expected one of queued"):
            record_from_dict(data)
    assert sample_status("failed") == "failed"


def _field_docstrings(cls: type) -> dict[str, str]:
    body = ast.parse(inspect.getsource(cls)).body[0].body
    out = {}
    for node, after in zip(body, body[1:], strict=False):
        if (isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            out[node.target.id] = after.value.value
    return out


def test_every_recipe_field_documents_itself_and_continuous_ones_end_with_their_unit():
    docs = _field_docstrings(Recipe)
    assert set(docs) == {f for f in Recipe.__dataclass_fields__}
    for name, (_, _, unit, _) in RECIPE_BOUNDS.items():
        assert docs[name].endswith(f", {unit}."), (name, docs[name], unit)


@pytest.mark.parametrize("module_name, cls_name", [
    ("synthgap.envs.campaign", "CampaignEnv"), ("synthgap.envs.furnace_control", "FurnaceControlEnv")])
def test_envs_declare_their_observation_and_action_types(module_name, cls_name):
    import gymnasium as gym

    cls = getattr(importlib.import_module(module_name), cls_name)
    (base,) = cls.__orig_bases__
    assert base.__origin__ is gym.Env
    assert get_args(base) == (NDArray[np.float32], NDArray[np.float32])
