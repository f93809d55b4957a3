"""A small benchmark end to end: table vs raw cells, caching, Dask, CLI, MLflow."""

import argparse
import csv
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from synthgap.agents.benchmark import BenchmarkConfig, BenchmarkError, run_benchmark
from synthgap.agents.metrics import best_so_far
from synthgap.agents.statistics import paired_wilcoxon
from synthgap.envs.chemistry.catalogue import SYSTEMS_PACKAGE
from synthgap.experiments.benchmark_cli import add_benchmark_parser

TIMING = {"wall_ms_per_suggestion"}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """BaTiO3 by name and a held-out copy of MgAl2O4 by path; 3 planners x 3 seeds."""
    from importlib import resources

    root = tmp_path_factory.mktemp("bench")
    held_out = root / "heldout_spinel.yaml"
    shutil.copy(resources.files(SYSTEMS_PACKAGE).joinpath("data/systems/MgAl2O4.yaml"), held_out)
    config = BenchmarkConfig(
        systems=("BaTiO3", str(held_out)), planners=("random", "thermo_only", "synthesis_aware"),
        seeds=3, budget=6, out=str(root / "out"), workers=2, oracle_samples=4000,
        progress=False)
    return config, run_benchmark(config)


def same(a, b) -> bool:
    """Equality that treats NaN ("never reached") as equal to NaN."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def read_csv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_table_matches_raw_cells(bench):
    config, result = bench
    out = Path(config.out)
    cells = [json.loads(p.read_text()) for p in sorted((out / "cells").glob("*.json"))]
    assert len(cells) == 2 * 3 * 3 == result.n_computed
    summary = read_csv(out / "summary.csv")
    assert len(summary) == 6
    for row in summary:
        recs = [c for c in cells if c["cell"]["system_key"] == row["system_key"]
                and c["cell"]["planner"] == row["planner"]]
        oracle = json.loads(next((out / "oracle").glob(f"{row['system_key']}__*.json")).read_text())
        assert float(row["oracle"]) == pytest.approx(oracle["value"])
        # reported as fractions of the oracle
        finals = [best_so_far([e["performance"] for e in c["experiments"]],
                              [e["buildable"] for e in c["experiments"]])[-1] / oracle["value"] for c in recs]
        assert float(row["final_best_median"]) == pytest.approx(np.median(finals))
        assert float(row["final_best_q25"]) == pytest.approx(np.percentile(finals, 25))
        assert float(row["final_regret_median"]) == pytest.approx(1.0 - np.median(finals))
        # means with a bootstrap interval, and the paired test against random search (same seeds)
        assert float(row["final_best_mean"]) == pytest.approx(np.mean(finals))
        assert float(row["final_best_ci_low"]) <= float(row["final_best_mean"]) <= float(row["final_best_ci_high"])
        by_seed = {c["cell"]["seed"]: f for c, f in zip(recs, finals, strict=True)}
        rand = {c["cell"]["seed"]: best_so_far([e["performance"] for e in c["experiments"]],
                                               [e["buildable"] for e in c["experiments"]])[-1] / oracle["value"]
                for c in cells if c["cell"]["system_key"] == row["system_key"] and c["cell"]["planner"] == "random"}
        if row["planner"] == "random":
            assert row["p_vs_random"] == "nan"
        else:
            seeds = sorted(by_seed)
            want = paired_wilcoxon([by_seed[k] for k in seeds], [rand[k] for k in seeds])
            assert float(row["p_vs_random"]) == pytest.approx(want)
        assert row["p_vs_best_bo"] == "nan" and row["best_bo"] == ""  # no BO planner in this grid
        assert row["training_experiments"] == "0"  # built-in planners train on nothing
    assert len(read_csv(out / "results.csv")) == 18
    md = (out / "summary.md").read_text()
    assert "| BaTiO3 | thermo_only |" in md and "Ba3Ti2O7" in md
    for fig in ("fig2_1_synthesis_gap", "fig2_2_drift", "regret_BaTiO3"):
        assert Path(result.files[fig]).stat().st_size > 10_000
    # the held-out system file got its own key (stem + content hash)
    assert any(r["system_key"].startswith("heldout_spinel-") for r in summary)


def test_second_run_recomputes_nothing(bench):
    config, first = bench
    cells = sorted((Path(config.out) / "cells").glob("*.json"))
    before = {p: p.stat().st_mtime_ns for p in cells}
    again = run_benchmark(config)
    assert again.n_computed == 0
    assert {p: p.stat().st_mtime_ns for p in cells} == before
    assert same(again.summary, first.summary)


def test_dask_local_cluster_gives_the_same_results(bench, tmp_path):
    config, first = bench
    dask_config = replace(config, out=str(tmp_path / "dask"), executor="dask", workers=2)
    result = run_benchmark(dask_config)
    assert result.n_computed == 18
    strip = [{k: v for k, v in r.items() if k not in TIMING} for r in result.rows]
    assert same(strip, [{k: v for k, v in r.items() if k not in TIMING} for r in first.rows])


def parse(argv):
    p = argparse.ArgumentParser()
    add_benchmark_parser(p.add_subparsers())
    return p.parse_args(["benchmark", *argv])


# MLflow's SQLAlchemy store emits SQLAlchemy 2.1 deprecation noise: not ours
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")
def test_cli_json_from_cache_and_mlflow(bench, tmp_path, monkeypatch, capsys):
    config, _ = bench
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/m.db")
    args = parse(["--systems", ",".join(config.systems), "--planners",
                  ",".join(config.planners), "--seeds", "3", "--budget", "6",
                  "--oracle-samples", "4000", "--out", config.out, "--json", "--no-progress"])
    assert args.func(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["computed_cells"] == 0 and len(data["summary"]) == 6
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/m.db")
    exp = client.get_experiment_by_name("synthgap-benchmark")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 18
    assert {r.data.tags["mlflow.source.name"] for r in runs} == {"synthgap benchmark"}
    assert data["files"]["mlflow_run_id"] == parents[0].info.run_id
    hist = client.get_metric_history(children[0].info.run_id, "regret")
    assert [m.step for m in hist] == list(range(1, 7))
    text = parse(["--systems", ",".join(config.systems), "--planners", ",".join(config.planners), "--seeds", "3",
                  "--budget", "6", "--oracle-samples", "4000", "--out", config.out, "--no-progress"])
    assert text.func(text) == 0  # the text summary names the run and the store it went to
    assert re.search(rf"logged to MLflow run [0-9a-f]{{32}} \(store sqlite:///{re.escape(str(tmp_path))}/m.db\)",
                     capsys.readouterr().out)


@pytest.mark.parametrize("argv, message", [
    (["--systems", "Unobtainia"], "cannot load 'Unobtainia'"),
    (["--systems", "BaTiO3", "--planners", "random,oracle"], "unknown planner 'oracle'"),
    (["--systems", "BaTiO3", "--seeds", "0"], "seeds must be a positive integer"),
    (["--systems", "BaTiO3", "--scheduler", "tcp://127.0.0.1:1"], "needs --executor dask"),
    (["--systems", ""], "at least one system"),
])
def test_bad_input_is_a_value_error(argv, message, tmp_path):
    args = parse([*argv, "--out", str(tmp_path), "--no-mlflow"])
    with pytest.raises(BenchmarkError, match=message) as info:
        args.func(args)
    assert isinstance(info.value, ValueError)


def test_campaigns_in_held_out_worlds_are_scored_against_their_worlds_oracle(tmp_path):
    """--world-spread: each seed's campaign in its own world from the envs' test range (every
    planner of a seed in the same one), its recipes scored in that world, against its oracle."""
    from synthgap.agents.benchmark_cells import Cell, score_recipes
    from synthgap.envs.campaign import WORLD_SPLITS
    from synthgap.envs.chemistry import load_system
    from synthgap.envs.lab.world import draw_world

    config = BenchmarkConfig(systems=("BaTiO3",), planners=("random", "thermo_only"), seeds=2, budget=3,
                             out=str(tmp_path / "w"), workers=1, oracle_samples=2000, world_spread=1.0,
                             progress=False)
    result = run_benchmark(config)
    keys = {rec["oracle_key"] for rec in result.cells.values()}
    assert len(keys) == 2 and all("__w1s" in k for k in keys)  # one world per seed, shared by the planners
    assert len({round(result.oracles[k]["value"], 6) for k in keys}) == 2  # worlds differ
    cell = Cell("BaTiO3", "random", 1, 3, world_spread=1.0)
    assert cell.world_seed == WORLD_SPLITS["test"][0] + 1 and cell.key != Cell("BaTiO3", "random", 1, 3).key
    rec = result.cells[cell.key]
    recipes = [e["recipe"] for e in rec["experiments"]]
    truth = draw_world(load_system("BaTiO3"), cell.world_seed, 1.0).system
    assert [e["buildable"] for e in rec["experiments"]] == pytest.approx(score_recipes(truth, recipes))
    system = load_system("BaTiO3")
    mid = [{"target": "BaTiO3", "precursors": list(system.targets["BaTiO3"].precursor_sets[0]), "excess": 0.05,
            "milling_time": 2.0, "ramp_rate": 10.0, "dwell_temperature": 1350.0, "dwell_time": 2.0,
            "cooling_rate": 10.0, "atmosphere": "air"}]
    assert score_recipes(truth, mid) != pytest.approx(score_recipes(system, mid), rel=0.01)  # the world matters
    row = next(r for r in result.rows if r["planner"] == "random" and r["seed"] == 1)
    assert row["oracle"] == pytest.approx(result.oracles[cell.oracle_key]["value"])
    with pytest.raises(BenchmarkError, match="--world-spread"):
        BenchmarkConfig(systems=("BaTiO3",), world_spread=-1.0).validate()
