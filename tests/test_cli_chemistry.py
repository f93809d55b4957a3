"""The chemistry commands: JSON contracts, plots written, and one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from synthgap.experiments.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_systems_json_lists_targets_and_unobtainium(capsys):
    code, out, _ = run(capsys, "systems", "--json")
    data = json.loads(out)
    assert code == 0
    names = {s["system"] for s in data["systems"]}
    assert {"BaTiO3", "CaSiO3", "LiMn2O4", "MgAl2O4"} <= names
    unob = [t["phase"] for s in data["systems"] for t in s["targets"] if t["unobtainium"]]
    assert set(unob) == {"Ba3Ti2O7"}  # Li4Mn5O12 is a known spinel (issue 14)


def test_reaction_json_gives_crossover(capsys):
    code, out, _ = run(capsys, "reaction", "CaCO3 -> CaO + CO2", "--T", "1100", "--p", "CO2=1", "--json")
    data = json.loads(out)
    assert code == 0
    assert 1050 < data["crossover_K"] < 1250
    assert data["dG_kJ_per_mol"] > 0  # below the crossover at 1 atm CO2
    assert "FREED" in data["sources"]["CaCO3"]["gibbs"]  # the assessed table comes first


def test_reaction_works_beyond_the_catalogue(capsys):
    code, out, _ = run(capsys, "reaction", "SrCO3 -> SrO + CO2", "--T", "1500", "--json")
    assert code == 0 and json.loads(out)["crossover_K"] > 1000


def test_reaction_takes_its_phases_from_a_system_file_first(capsys):
    """Issue 14: ``reaction`` takes ``--system FILE``, so a phase the tables lack (YBCO, an
    estimate with its source in the ARROWS file) can be asked about, with that file's numbers."""
    from synthgap.agents.arrows_models import YBCO_SYSTEM_FILE, ybco_system
    from synthgap.envs.chemistry import balance, find_phase

    equation = "0.5 Y2O3 + 2 BaCO3 + 3 CuO -> YBa2Cu3O6.5 + 2 CO2"
    code, _, err = run(capsys, "reaction", equation, "--T", "1173")
    assert code == 2 and "no standard enthalpy" in err  # the tables alone do not have it
    code, out, _ = run(capsys, "reaction", equation, "--T", "1173", "--p", "CO2=0.0004",
                       "--system", str(YBCO_SYSTEM_FILE), "--json")
    data = json.loads(out)
    system = ybco_system()
    phases = system.phases
    rxn = balance([phases["Y2O3"], phases["BaCO3"], phases["CuO"]], [phases["YBa2Cu3O6.5"], phases["CO2"]])
    assert code == 0 and data["system"] == system.name and data["as_written"]
    assert data["dG_kJ_per_mol"] == pytest.approx(float(rxn.gibbs(1173.0, {"CO2": 0.0004})) / 1e3, rel=1e-12)
    assert data["sources"]["YBa2Cu3O6.5"] == phases["YBa2Cu3O6.5"].sources()
    assert find_phase("BaCO3", system) is phases["BaCO3"]  # the system's own phase, not the catalogue's
    assert find_phase("SrO", system).name == "SrO"  # beyond the file: the tables, as without it


@pytest.mark.parametrize(
    "argv, message",
    [
        (["reaction", "CaCO3 -> CaO + CO2", "--T", "-5"], "temperature must be in"),
        (["reaction", "CaCO3 -> CaO + CO2", "--T", "1e9"], "temperature must be in"),
        (["reaction", "CaCO3 -> SiO2"], "cannot balance"),
        (["reaction", "Xx2O3 -> Xx + O2"], "Xx"),
        (["reaction", "BaTiO3 + TiO2 -> BaTi2O5"], "no standard enthalpy"),
        (["reaction", "CaCO3 -> CaO + CO2", "--p", "CO2=-1"], "must be > 0 atm"),
        (["reaction", "CaCO3 -> CaO + CO2", "--system", "/nonexistent/system.yaml"], "no such file or bundled system"),
        (["hull", "NoSuchSystem"], "no such file or bundled system"),
        (["fire", "BaTiO3", "--recipe", "/nonexistent/recipe.yaml"], "does not exist"),
        (["pathway", "BaTiO3", "--target", "TiO2"], "not a target"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_hull_fire_pathway_write_pngs(capsys, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("target: BaTiO3\nprecursors: [BaCO3, TiO2]\ndwell_temperature: 1473\n"
                      "dwell_time: 4\nramp_rate: 10\n")
    code, out, _ = run(capsys, "hull", "BaTiO3", "--T", "1273", "--out", str(tmp_path / "h.png"), "--json")
    assert code == 0 and json.loads(out)["e_above_hull_1273K_eV_per_atom"]["Ba3Ti2O7"] > 0.005
    code, out, _ = run(capsys, "fire", "BaTiO3", "--recipe", str(recipe), "--out", str(tmp_path / "f.png"),
                       "--json")
    fired = json.loads(out)
    assert code == 0 and fired["target_fraction"] > 0.9
    assert abs(sum(fired["phase_fractions"].values()) - 1) < 1e-3
    code, out, _ = run(capsys, "pathway", "BaTiO3", "--out", str(tmp_path / "p.png"), "--json")
    paths = json.loads(out)["paths"]
    assert code == 0 and any(p["trap"] == "Ba2TiO4" for p in paths)
    for name in ("h.png", "f.png", "p.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_recipe_field_exits_2(capsys, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("target: BaTiO3\nprecursors: [BaCO3, TiO2]\ndwell_temperature: 3000\n")
    code, _, err = run(capsys, "fire", "BaTiO3", "--recipe", str(recipe), "--out", str(tmp_path / "f.png"))
    assert code == 2 and "dwell_temperature must be within" in err


def test_fire_takes_a_particle_size_distribution(capsys, tmp_path):
    from synthgap.envs.chemistry import Recipe, fire, load_system
    from synthgap.envs.chemistry.size_classes import ParticleSizeDistribution

    recipe = tmp_path / "r.yaml"
    recipe.write_text("target: MgAl2O4\nprecursors: [MgO, Al2O3]\ndwell_temperature: 1573\ndwell_time: 32\n"
                      "milling_time: 2\n")
    png = str(tmp_path / "f.png")
    code, out, _ = run(capsys, "fire", "MgAl2O4", "--recipe", str(recipe), "--out", png, "--size-classes", "5",
                       "--size-spread", "2.5", "--json")
    fired = json.loads(out)
    want = fire(load_system("MgAl2O4"), Recipe("MgAl2O4", ("MgO", "Al2O3"), dwell_temperature=1573, dwell_time=32,
                                                milling_time=2), sizes=ParticleSizeDistribution(2.5, 5))
    assert code == 0 and (fired["size_classes"], fired["size_spread"]) == (5, 2.5)
    assert fired["target_fraction"] == pytest.approx(float(want.target_fraction[0]), rel=1e-12)
    code, out, _ = run(capsys, "fire", "MgAl2O4", "--recipe", str(recipe), "--out", png, "--json")
    assert code == 0 and json.loads(out)["size_spread"] is None
    assert json.loads(out)["target_fraction"] > fired["target_fraction"] + 0.04  # the coarse tail lags
    for flags, message in ((["--size-spread", "2"], "needs --size-classes above 1"),
                           (["--size-classes", "0"], "from 1 to 41"),
                           (["--size-classes", "3", "--size-spread", "0.9"], ">= 1"),
                           (["--size-classes", "3", "--size-spread", "nan"], "finite")):
        code, _, err = run(capsys, "fire", "MgAl2O4", "--recipe", str(recipe), "--out", png, *flags)
        assert code == 2 and message in err and err.count("\n") == 1


def test_fire_takes_a_powder_bed(capsys, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("target: LiMn2O4\nprecursors: [Li2CO3, Mn2O3]\ndwell_temperature: 1123\ndwell_time: 0.5\n"
                      "ramp_rate: 5\ncooling_rate: 0.64\natmosphere: N2\nmilling_time: 12\n")
    png = str(tmp_path / "f.png")
    code, out, _ = run(capsys, "fire", "LiMn2O4", "--recipe", str(recipe), "--out", png, "--json")
    assert code == 0 and json.loads(out)["bed_depth_mm"] is None and json.loads(out)["target_fraction"] > 0.9
    code, out, _ = run(capsys, "fire", "LiMn2O4", "--recipe", str(recipe), "--out", png, "--bed-depth", "5",
                       "--json")
    assert code == 0 and json.loads(out)["bed_depth_mm"] == 5 and json.loads(out)["target_fraction"] < 0.1
    for depth in ("0", "-3", "nan", "inf"):
        code, _, err = run(capsys, "fire", "LiMn2O4", "--recipe", str(recipe), "--out", png, "--bed-depth", depth)
        assert code == 2 and "depth_mm must be a number in (0, 1000]" in err and err.count("\n") == 1


def test_bench_chemistry_json_keys(capsys):
    code, out, _ = run(capsys, "bench", "chemistry", "--n", "2000", "--single", "20", "--repeats", "2",
                       "--json")
    data = json.loads(out)
    assert code == 0
    assert {"batch_recipes_per_s", "single_recipes_per_s", "ratio"} <= set(data)
    assert data["ratio"] == pytest.approx(data["batch_recipes_per_s"] / data["single_recipes_per_s"])
    assert data["ratio_to_recipe_objects"] == pytest.approx(
        data["batch_recipes_per_s"] / data["single_recipe_objects_per_s"])
    assert data["size_classes"] == 5 and data["size_classes_ratio"] == pytest.approx(
        data["size_class_recipes_per_s"] / data["batch_recipes_per_s"])
    assert data["bed_ratio"] == pytest.approx(data["bed_recipes_per_s"] / data["batch_recipes_per_s"])


def test_console_script_help_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "synthgap.experiments.cli", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for cmd in ("systems", "reaction", "hull", "fire", "pathway", "bench"):
        assert cmd in out


def test_ctrl_c_wrapped_by_a_c_extension_still_counts_as_an_interrupt():
    from synthgap.experiments.cli import interrupted

    def wrapped():
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ki:
            try:
                raise SystemError("callback returned a result with an exception set") from ki
            except SystemError as inner:
                raise SystemError("dispatcher returned a result with an exception set") from inner

    with pytest.raises(SystemError) as info:
        wrapped()
    assert interrupted(info.value)
    assert not interrupted(ValueError("bad input"))
    loop = RuntimeError("a")
    loop.__context__ = RuntimeError("b")
    loop.__context__.__context__ = loop
    assert not interrupted(loop)  # a cyclic chain ends


def test_reaction_keeps_the_users_coefficients_when_they_balance(capsys):
    from synthgap.experiments.cli import main

    assert main(["reaction", "Fe2O3 -> 2 FeO + 0.5 O2", "--T", "1500", "--json"]) == 0
    mine = json.loads(capsys.readouterr().out)
    assert main(["reaction", "0.5 Fe2O3 -> FeO + 0.25 O2", "--T", "1500", "--json"]) == 0
    half = json.loads(capsys.readouterr().out)
    assert mine["equation"] == "Fe2O3 -> 2 FeO + 0.5 O2" and mine["as_written"] and half["as_written"]
    assert mine["dG_kJ_per_mol"] == pytest.approx(2 * half["dG_kJ_per_mol"])  # per the equation as written
    assert mine["crossover_K"] == pytest.approx(half["crossover_K"])
    assert main(["reaction", "Fe2O3 -> FeO + O2", "--T", "1500"]) == 0  # unbalanced as written: said so
    assert "your coefficients do not balance" in capsys.readouterr().out
