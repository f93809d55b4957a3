"""No command-line input gives a traceback or runs long before it is refused.

One table over every subcommand that takes a file or a number: directories, huge numbers,
NaN/inf, empty, binary and malformed files, alias bombs and nesting bombs. Each must end
with exit status 2 and exactly one line on stderr that names the file or the flag. Every
refusal happens before anything trains, starts an emulator or imports MLflow.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from synthgap.experiments.cli import build_parser, main

HUGE = "1000000000000"  # 10**12
LONG = "X" * 100_000

LIMITS = ("limits: {max_temperature_K: 1473.15, max_ramp_rate_K_per_min: 10, max_dwell_h: 48, "
          "max_mass_g: 50, safe_temperature_K: 333.15}\n")


def alias_bomb(levels: int = 9) -> str:
    """A YAML list of 9**9 (387 million) strings once its aliases are expanded: 400 bytes."""
    rows = [f"&a{i} [" + ",".join(["lol"] * 9 if i == 0 else [f"*a{i - 1}"] * 9) + "]" for i in range(levels)]
    return "[" + ", ".join(rows) + "]"


FILES = {
    "empty.yaml": "",
    "bin.yaml": b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe",
    "bad.yaml": "limits: {a: [\n",
    "deep.json": "[" * 100_000,
    "lab_ok.yaml": LIMITS,
    "bomb_lab.yaml": f"limits: {alias_bomb()}\n",
    "bomb_recipe.yaml": f"target: {alias_bomb()}\nprecursors: [BaCO3, TiO2]\n",
    "bomb_train.yaml": f"env_kwargs: {{x: {alias_bomb()}}}\n",
    "bomb_system.yaml": f"system: {alias_bomb()}\n",
    "list_target.yaml": "target: [BaTiO3]\nprecursors: [BaCO3, TiO2]\n",
    "journal.jsonl": '{"seq": 1, "event": "campaign_started"}\n' + "[" * 100_000 + '\n{"seq": 2}\n',
    "exists.txt": "x",
    "huge_lab.yaml": LIMITS.replace("1473.15", "9" * 400),  # an int beyond any float
    "huge_recipe.yaml": "target: BaTiO3\nprecursors: [BaCO3, TiO2]\ndwell_time: " + "9" * 400 + "\n",
    "huge_train.yaml": "learning_rate: " + "9" * 400 + "\n",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("refusals")
    for name, content in FILES.items():
        (root / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    (root / "adir").mkdir()
    return root


# (argv with {d} for the files' folder, what the one line must name)
CASES = [
    # the recipe format and the coordination study
    (("recipe", "template", "NoSuchSystem"), "NoSuchSystem"),
    (("recipe", "schema", "--system", "{d}/bad.yaml"), "{d}/bad.yaml"),
    (("recipe", "check", "{d}/adir", "--system", "BaTiO3"), "{d}/adir"),
    (("lab", "coordination", "--seeds", "1"), "--seeds"),
    (("validate", "arrows", "{d}/adir"), "{d}/adir"),
    (("validate", "arrows", "{d}/bin.yaml"), "{d}/bin.yaml"),
    (("validate", "arrows", "--target", "NoSuchPhase"), "--target NoSuchPhase"),
    (("lab", "coordination", "--system", "{d}/bad.yaml"), "{d}/bad.yaml"),
    # chemistry
    (("reaction", "CaCO3 -> CaO + CO2", "--p", "CO2=inf"), "--p"),
    (("reaction", "CaCO3 -> CaO + CO2", "--p", "CO2=nan"), "--p"),
    (("reaction", "CaCO3 -> CaO + CO2", "--T", "nan"), "--T"),
    (("reaction", "CaCO3 -> CaO + CO2" + " + CaO" * 20_000), "reaction"),
    (("hull", "{d}/adir"), "{d}/adir"),
    (("hull", "{d}/bomb_system.yaml"), "{d}/bomb_system.yaml"),
    (("hull", "{d}/bin.yaml"), "{d}/bin.yaml"),
    (("hull", "{d}/bad.yaml"), "{d}/bad.yaml"),
    (("hull", "{d}/deep.json"), "{d}/deep.json"),
    (("hull", LONG), "XXXXXXXX"),
    (("hull", "BaTiO3", "--T", "inf"), "--T"),
    (("fire", "BaTiO3", "--recipe", "{d}/adir"), "{d}/adir"),
    (("fire", "BaTiO3", "--recipe", "{d}/bomb_recipe.yaml"), "{d}/bomb_recipe.yaml"),
    (("fire", "BaTiO3", "--recipe", "{d}/list_target.yaml"), "{d}/list_target.yaml"),
    (("fire", "BaTiO3", "--recipe", "{d}/bin.yaml"), "{d}/bin.yaml"),
    (("fire", "BaTiO3", "--recipe", "{d}/bad.yaml"), "{d}/bad.yaml"),
    (("fire", "BaTiO3", "--recipe", "{d}/deep.json"), "{d}/deep.json"),
    (("fire", "BaTiO3", "--recipe", "{d}/huge_recipe.yaml"), "{d}/huge_recipe.yaml"),
    (("fire", "{d}/adir", "--recipe", "{d}/list_target.yaml"), "{d}/adir"),
    (("pathway", "BaTiO3", "--target", LONG), "--target"),
    (("pathway", "{d}/bomb_system.yaml"), "{d}/bomb_system.yaml"),
    (("bench", "chemistry", "--n", HUGE), "--n"),
    (("bench", "chemistry", "--repeats", "nan"), "--repeats"),
    (("system", "build", LONG, "--precursors", "SrCO3,TiO2", "--out", "{d}/s.yaml"), "TARGET"),
    (("system", "build", "SrTiO3", "--precursors", ",".join(["SrCO3"] * 20), "--out", "{d}/s.yaml"),
     "--precursors"),
    (("system", "build", "SrTiO3", "--precursors", "SrCO3,TiO2", "--out", "{d}/exists.txt"), "--out {d}/exists.txt"),
    (("system", "build", "SrTiO3", "--precursors", "SrCO3,TiO2", "--out", "{d}/adir"), "--out {d}/adir"),
    (("system", "build", "SrTiO3", "--precursors", "SrCO3,TiO2", "--out", "{d}/no/such/s.yaml"), "{d}/no/such"),
    (("system", "build", "SrTiO3", "--precursors", "SrCO3,TiO2", "--out", ""), "--out is empty"),
    # lab twin
    (("lab", "run", "--samples", HUGE, "--out", "{d}/lab"), "--samples"),
    (("lab", "run", "--furnaces", "1000000000", "--out", "{d}/lab"), "--furnaces"),
    (("lab", "run", "--out", "{d}/exists.txt"), "--out"),
    (("lab", "run", "--out", ""), "--out"),
    (("hull", "BaTiO3", "--out", "{d}/no/such/folder/h.png"), "{d}/no/such/folder"),
    (("hull", "BaTiO3", "--out", ""), "--out is empty"),
    (("lab", "run", "--seed", "-1", "--out", "{d}/lab"), "--seed"),
    (("lab", "run", "--system", "{d}/bomb_system.yaml", "--out", "{d}/lab"), "{d}/bomb_system.yaml"),
    (("calibrate", "{d}/exists.txt"), "{d}/exists.txt"),
    (("bench", "lab", "--samples", HUGE), "--samples"),
    (("bench", "envs", "--seconds", "nan"), "--seconds"),
    (("bench", "envs", "--seconds", "inf"), "--seconds"),
    (("bench", "envs", "--repeats", HUGE), "--repeats"),
    # training
    (("train", "--n-envs", "1000000"), "--n-envs"),
    (("train", "--timesteps", HUGE * 3), "--timesteps"),
    (("train", "--seed", "-1"), "--seed"),
    (("train", "--tracking-uri", "foo://bar"), "--tracking-uri"),
    (("train", "--config", "{d}/empty.yaml"), "{d}/empty.yaml"),
    (("train", "--config", "{d}/adir"), "{d}/adir"),
    (("train", "--config", "{d}/bomb_train.yaml"), "{d}/bomb_train.yaml"),
    (("train", "--config", "{d}/bin.yaml"), "{d}/bin.yaml"),
    (("train", "--config", "{d}/bad.yaml"), "{d}/bad.yaml"),
    (("train", "--config", "{d}/deep.json"), "{d}/deep.json"),
    (("train", "--config", "{d}/huge_train.yaml"), "{d}/huge_train.yaml"),
    (("train", "--env-kwargs", "[" * 100_000), "--env-kwargs"),
    (("promote", "model", "nan"), "version"),
    (("promote", "model", "1", "--tracking-uri", "foo://bar"), "--tracking-uri"),
    (("evaluate", "models:/m@champion", "--episodes", HUGE), "--episodes"),
    (("evaluate", "models:/m@champion", "--seed", "-1"), "--seed"),
    (("ui", "--port", "1000000", "--dry-run"), "--port"),
    (("ui", "--port", "nan", "--dry-run"), "--port"),
    (("benchmark", "--systems", "BaTiO3", "--seeds", HUGE), "--seeds"),
    (("benchmark", "--systems", "BaTiO3", "--oracle-samples", HUGE), "--oracle-samples"),
    (("benchmark", "--systems", "BaTiO3", "--workers", HUGE), "--workers"),
    (("benchmark", "--systems", "{d}/bomb_system.yaml", "--no-mlflow"), "{d}/bomb_system.yaml"),
    (("demo", "--budget", HUGE), "--budget"),
    (("demo", "--recipes", "nan"), "--recipes"),
    # hardware
    (("emulate", "furnace", "--slave", "300"), "--slave"),
    (("emulate", "furnace", "--slave", "0"), "--slave"),
    (("emulate", "balance", "--mass", "nan"), "--mass"),
    (("emulate", "furnace", "--duration", "-1"), "--duration"),
    (("emulate", "furnace", "--time-scale", "inf"), "--time-scale"),
    (("emulate", "lab", "--system", "Nope", "--duration", "0.1"), "--system"),
    (("emulate", "furnace", "--system", "BaTiO3", "--duration", "0.1"), "--system"),
    (("emulate", "furnace", "--config", "{d}/bomb_lab.yaml", "--duration", "0.1"), "{d}/bomb_lab.yaml"),
    (("emulate", "furnace", "--config", "{d}/adir", "--duration", "0.1"), "{d}/adir"),
    (("emulate", "lab", "--config", "{d}/bin.yaml", "--duration", "0.1"), "{d}/bin.yaml"),
    (("deploy", "--policy", "p.zip", "--lab", "{d}/adir"), "{d}/adir"),
    (("deploy", "--policy", "p.zip", "--lab", "{d}/bomb_lab.yaml"), "{d}/bomb_lab.yaml"),
    (("deploy", "--policy", "p.zip", "--lab", "{d}/bad.yaml"), "{d}/bad.yaml"),
    (("deploy", "--policy", "p.zip", "--lab", "{d}/bin.yaml"), "{d}/bin.yaml"),
    (("deploy", "--policy", "p.zip", "--lab", "{d}/empty.yaml"), "{d}/empty.yaml"),
    (("deploy", "--policy", "p.zip", "--lab", "{d}/huge_lab.yaml"), "{d}/huge_lab.yaml"),
    (("deploy", "--policy", "p.zip", "--lab", "{d}/lab_ok.yaml", "--episodes", HUGE), "--episodes"),
    (("deploy", "--policy", "p.zip", "--lab", "{d}/lab_ok.yaml", "--resume", "{d}/journal.jsonl"),
     "{d}/journal.jsonl"),
    (("deploy", "--policy", "p.zip", "--lab", "{d}/lab_ok.yaml", "--tracking-uri", "foo://bar"), "--tracking-uri"),
]


def _id(case) -> str:
    argv, _ = case
    return " ".join(a if len(a) < 30 else a[:12] + "..." for a in argv).replace("{d}/", "")


def run(capsys, argv: list[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refusals
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_refused_with_exit_2_and_one_line_naming_the_file_or_flag(case, files, capsys, monkeypatch):
    monkeypatch.chdir(files)  # nothing a refusal might write lands in the work tree
    argv, needle = case
    code, err = run(capsys, [a.replace("{d}", str(files)) for a in argv])
    assert code == 2, err[-500:]
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.endswith("\n"), err[-500:]
    assert needle.replace("{d}", str(files)) in err
    assert len(err) <= 500


def _subcommands() -> set[str]:
    """Every leaf command of the parser: ``hull``, ``lab run``, ``bench envs``, ..."""
    import argparse

    def leaves(parser: argparse.ArgumentParser, prefix: str) -> set[str]:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            return {prefix}
        return {leaf for name, p in subs[0].choices.items() for leaf in leaves(p, f"{prefix} {name}".strip())}

    return leaves(build_parser(), "")


def test_the_table_covers_every_subcommand_that_takes_a_file_or_a_number():
    covered = set()
    for argv, _ in CASES:
        covered.add(" ".join(argv[:2]) if argv[0] in ("lab", "bench", "recipe", "validate", "system") else argv[0])
    assert _subcommands() - covered == {"systems"}  # systems takes neither


def test_hull_out_folder_writes_inside_it(files, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "plots"
    folder.mkdir()
    assert main(["hull", "BaTiO3", "--out", str(folder), "--json"]) == 0
    assert (folder / "hull.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "plots.png").exists()  # before: written beside the folder
    assert str(folder / "hull.png") in capsys.readouterr().out


def test_empty_training_config_is_refused_not_trained_with_the_defaults(files, capsys, monkeypatch):
    monkeypatch.chdir(files)
    code, err = run(capsys, ["train", "--config", str(files / "empty.yaml")])
    assert code == 2 and "is empty" in err
    assert not (files / "synthgap-runs").exists()  # no store, no run, no model


def test_a_bad_store_uri_from_the_environment_is_one_line_too(tmp_path):
    """MLFLOW_TRACKING_URI is not a flag: MLflow itself refuses it; still one line, exit 2."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": "foo://bar", "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.run([sys.executable, "-m", "synthgap.experiments.cli", "promote", "model", "1"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-500:]
    assert proc.stderr.count("\n") == 1 and "foo://bar" in proc.stderr and "Traceback" not in proc.stderr


def test_a_plot_to_a_missing_folder_makes_no_folder(files, capsys, monkeypatch):
    monkeypatch.chdir(files)
    code, err = run(capsys, ["hull", "BaTiO3", "--out", str(files / "typo" / "deeper" / "h.png")])
    assert code == 2 and "does not exist" in err
    assert not (files / "typo").exists()  # it once made the whole tree (at the filesystem root for /nonexistent)
