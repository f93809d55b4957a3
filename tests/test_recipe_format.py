"""The recipe file format: the published JSON Schema, the templates and the loader agree."""

from __future__ import annotations

import json

import numpy as np
import pytest

jsonschema = pytest.importorskip("jsonschema")

from synthgap.envs.chemistry import Recipe, RecipeError, bundled_system_names, load_system, validate_recipe  # noqa: E402
from synthgap.envs.chemistry.limits import RECIPE_LIMITS  # noqa: E402
from synthgap.envs.chemistry.recipe_format import SCHEMA_FILE, recipe_schema, recipe_template  # noqa: E402
from synthgap.experiments.cli import main  # noqa: E402


def test_the_published_schema_is_the_one_derived_from_the_limits():
    assert json.loads(SCHEMA_FILE.read_text()) == recipe_schema()
    props = recipe_schema()["properties"]
    for name, bound in RECIPE_LIMITS.items():
        assert (props[name]["minimum"], props[name]["maximum"]) == (bound.low, bound.high)
        assert bound.unit in props[name]["description"]


@pytest.mark.parametrize("name", sorted(bundled_system_names()))
def test_every_systems_template_is_a_valid_recipe_of_it(name, tmp_path):
    system = load_system(name)
    path = tmp_path / "r.yaml"
    path.write_text(recipe_template(system))
    recipe = validate_recipe(system, Recipe.from_file(path))
    import yaml

    data = yaml.safe_load(path.read_text())
    jsonschema.validate(data, recipe_schema(system))
    jsonschema.validate(data, recipe_schema())
    assert recipe.target in system.targets and "#" in path.read_text()


def test_the_schema_accepts_exactly_what_the_loader_accepts():
    system = load_system("BaTiO3")
    schema = recipe_schema(system)
    validator = jsonschema.Draft202012Validator(schema)
    rng = np.random.default_rng(0)
    agree = 0
    for _ in range(400):
        d = {"target": rng.choice(["BaTiO3", "Ba3Ti2O7", "SrTiO3"]),
             "precursors": [["BaCO3", "TiO2"], ["BaO", "TiO2"], ["TiO2", "BaCO3"], "BaCO3, TiO2", "BaO,TiO2",
                            ["BaCO3"]][rng.integers(6)]}
        for name, b in RECIPE_LIMITS.items():
            if rng.random() < 0.5:
                span = b.high - b.low
                d[name] = float(rng.uniform(b.low - 0.2 * span, b.high + 0.2 * span))
        if rng.random() < 0.3:
            d["atmosphere"] = str(rng.choice(["air", "O2", "N2", "CO2", "argon"]))
        try:
            validate_recipe(system, Recipe.from_dict(d))
            loader_ok = True
        except RecipeError:
            loader_ok = False
        assert validator.is_valid(d) == loader_ok, d
        agree += loader_ok
    assert 20 < agree < 380  # both kinds were drawn


def test_recipe_cli_writes_a_template_never_overwrites_and_checks_files(tmp_path, capsys):
    out = tmp_path / "r.yaml"
    assert main(["recipe", "template", "LiMn2O4", "--out", str(out)]) == 0
    assert "target: LiMn2O4" in out.read_text()
    assert main(["recipe", "template", "LiMn2O4", "--out", str(out)]) == 2
    assert "the file exists" in capsys.readouterr().err
    assert main(["recipe", "check", str(out), "--system", "LiMn2O4"]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(out.read_text().replace("dwell_temperature: 1273", "dwell_temperature: 2500"))
    assert main(["recipe", "check", str(bad), "--system", "LiMn2O4"]) == 2
    assert "dwell_temperature must be within [573, 1773] K, got 2500" in capsys.readouterr().err
    assert main(["recipe", "schema", "--system", "BaTiO3"]) == 0
    assert json.loads(capsys.readouterr().out)["properties"]["target"]["enum"] == ["BaTiO3", "Ba3Ti2O7"]
    assert main(["recipe", "template", "BaTiO3", "--out", str(tmp_path / "no" / "r.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
